/**
 * The command policy over a real nats-server with real containers (issue 13: "let no caller become root").
 * The six requests that made any caller root on the host — a prestart hook running /bin/sh on the host, a
 * read-write bind of the host's "/", no pid namespace plus CAP_SYS_ADMIN, an exec with CAP_SYS_ADMIN and
 * CAP_SYS_MODULE, a bundle anywhere on the host, root.path "/etc" — are refused for an anonymous caller (on a
 * trusted network) and for a token caller with the default grant, naming rule and field, and nothing happens
 * on the host. A caller whose token maps to a grant that allows more can do that (a bind of an allowed path,
 * an exec with an allowed capability, hooks) and is still refused the rest. With two accounts, nats-server's
 * Nats-Request-Info names the NATS user, which the policy maps to a grant. A command service on a connection
 * without authentication refuses to start unless the network is said to be trusted.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type NatsConnection, headers } from '@nats-io/transport-node';
import { firstValueFrom, filter, take } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CordonClient } from '../../client/cordon-client.js';
import { UntrustedNetworkError, serveCommands } from '../../actors/command-service.js';
import { CommandPolicyError, type CommandPolicyInput, tokenDigest } from '../../actors/command-policy.js';
import { startNatsSupervisor } from '../../actors/nats-supervisor.js';
import { Supervisor } from '../../actors/supervisor.js';
import { connectNats } from '../../events/nats-connection.js';
import { createCgroupManager } from '../../kernel/index.js';
import { type Bundle, type OciSpecLike, makeBundle } from '../fixtures/bundle.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { until } from '../fixtures/wait.js';
import { destroyAll } from '../fixtures/containers.js';
import { freshRoot, startCordon, waitFor } from '../cli/helpers.js';
import { type TestHost, failure, startHost } from './hosts.js';

let srv: NatsServer;
let nc: NatsConnection;
let h: TestHost;
let roots: string;
let data: string;
let anon: CordonClient;
let plain: CordonClient;
let ops: CordonClient;
const outside: Bundle[] = [];

/** A grant that may bind `data`, run hooks and exec with CAP_SYS_PTRACE, and nothing else beyond the default. */
const policyFor = (): CommandPolicyInput => ({
  trustedNetwork: true,
  bundleRoots: [roots],
  grants: { ops: { verbs: ['*'], bypass: ['hooks'], capabilities: ['CAP_SYS_PTRACE'], hostPaths: [data] }, watch: { verbs: ['list', 'state'] } },
  tokens: [
    { name: 'watch', sha256: tokenDigest('watch-token'), grant: 'watch' },
    { name: 'plain', sha256: tokenDigest('plain-token'), grant: 'default' },
    { name: 'ops', sha256: tokenDigest('ops-token'), grant: 'ops' },
  ],
});

/** A bundle (busybox, runc's default config after `edit`) under the bundle root. */
function rootBundle(edit?: (s: OciSpecLike) => void): { dir: string; rootfs: string; spec: OciSpecLike } {
  const b = makeBundle({ spec: (s) => void edit?.(s) });
  const dir = join(roots, basename(b.dir));
  renameSync(b.dir, dir);
  return { dir, rootfs: join(dir, 'rootfs'), spec: b.spec };
}

/** Nothing of container `id` exists on the host: no state dir, bundle dir, cgroup, machine or event. */
async function leftNothing(host: TestHost, id: string): Promise<void> {
  expect(existsSync(join(host.root, id))).toBe(false);
  expect(existsSync(join(host.bundleRoot, id))).toBe(false);
  expect(Object.values(createCgroupManager({ id }).paths).filter((d) => existsSync(d))).toEqual([]);
  expect(host.sup.ids()).not.toContain(id);
  expect((await host.sup.store.read(1)).filter((e) => e.containerId === id)).toEqual([]);
}

beforeAll(async () => {
  roots = mkdtempSync('/tmp/cordon-policy-roots-');
  data = mkdtempSync('/tmp/cordon-policy-data-');
  srv = await NatsServer.start({ jetstream: false });
  nc = await connectNats({ servers: srv.url });
  h = await startHost(nc, 'pol-a', {}, { policy: policyFor() });
  anon = new CordonClient(nc, { timeoutMs: 20_000 });
  plain = new CordonClient(nc, { timeoutMs: 20_000, commandToken: 'plain-token' });
  ops = new CordonClient(nc, { timeoutMs: 20_000, commandToken: 'ops-token' });
});

afterAll(async () => {
  await h?.cleanup();
  await nc?.close();
  await srv?.stop();
  for (const b of outside) b.cleanup();
  rmSync(roots, { recursive: true, force: true });
  rmSync(data, { recursive: true, force: true });
});

describe('an unprivileged caller cannot become root', () => {
  const marker = `/tmp/cordon-policy-hook-ran-${process.pid}`;
  const etcMade = ['/etc/dev', '/etc/proc', '/etc/sys', '/etc/rootfs'];

  it('precondition: no marker, nothing cordon would make in /etc', () => {
    expect([marker, ...etcMade].filter((p) => existsSync(p))).toEqual([]);
  });

  for (const [who, client, label] of [
    ['anonymous (trusted network)', () => anon, 'anonymous'],
    ['a token with the default grant', () => plain, 'token:plain'],
  ] as const) {
    it(`${who}: the six requests are refused with the rule and field named, and nothing happens on the host`, async () => {
      const c = client().host('pol-a');
      const tag = label.replace(/\W/g, '');
      const cases: Array<[string, () => Promise<unknown>, string, string]> = [];
      // 1. A prestart hook: /bin/sh on the host, as root.
      const hooked = rootBundle((s) => void (s.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${marker}`] }] }));
      cases.push([`hk-${tag}`, () => c.create({ id: `hk-${tag}`, bundle: hooked.dir }), 'hooks', 'hooks.prestart[0]']);
      // 2. A read-write bind of the host's "/".
      const base = rootBundle();
      const bindRoot = { ...base.spec, mounts: [...base.spec.mounts, { destination: '/host', type: 'bind', source: '/', options: ['rbind', 'rw'] }] };
      cases.push([`bd-${tag}`, () => c.create({ id: `bd-${tag}`, config: bindRoot as unknown as Record<string, unknown>, rootfs: base.rootfs }), 'bindMounts', 'mounts[7].source']);
      // 3. The host's pid namespace plus CAP_SYS_ADMIN (exec saw host pids).
      const admin = ['CAP_SYS_ADMIN', 'CAP_KILL'];
      const hostPid = { ...base.spec, linux: { ...base.spec.linux, namespaces: base.spec.linux.namespaces?.filter((n) => n.type !== 'pid') }, process: { ...base.spec.process, capabilities: { bounding: admin, effective: admin, permitted: admin } } };
      cases.push([`pd-${tag}`, () => c.create({ id: `pd-${tag}`, config: hostPid as unknown as Record<string, unknown>, rootfs: base.rootfs }), 'namespaces', 'linux.namespaces']);
      // 5. A bundle anywhere on the host (a real one, outside the bundle roots).
      const elsewhere = makeBundle();
      outside.push(elsewhere);
      cases.push([`ot-${tag}`, () => c.create({ id: `ot-${tag}`, bundle: elsewhere.dir }), 'bundleRoots', 'bundle']);
      // 6. root.path "/etc" (made /etc/dev, /etc/proc, /etc/sys on the host): as a config object and in a bundle.
      cases.push([`et-${tag}`, () => c.create({ id: `et-${tag}`, config: { ...base.spec, root: { path: '/etc' } } as unknown as Record<string, unknown> }), 'rootfs', 'root.path']);
      const etcBundle = rootBundle((s) => void (s.root.path = '/etc'));
      cases.push([`eb-${tag}`, () => c.create({ id: `eb-${tag}`, bundle: etcBundle.dir }), 'rootfs', 'root.path']);

      for (const [id, send, rule, field] of cases) {
        const e = await failure(send());
        expect({ id, code: e.code, rule: e.rule, field: e.field }).toEqual({ id, code: 'PermissionDenied', rule, field });
        expect(e.message).toContain(`policy rule "${rule}": `);
        expect(e.message).toContain(`${field} refused for caller "${label}"`);
        await leftNothing(h, id);
      }

      // 4. An exec with CAP_SYS_ADMIN and CAP_SYS_MODULE into a running container (one this caller may make).
      const run = rootBundle((s) => void (s.process.args = ['sleep', '600']));
      const id = `ex-${tag}`;
      await c.create({ id, bundle: run.dir });
      await c.start({ id });
      const before = (await h.sup.store.read(1)).filter((x) => x.containerId === id).length;
      const e1 = await failure(c.exec({ id, args: ['sh', '-c', `touch ${marker}`], caps: ['CAP_SYS_ADMIN', 'CAP_SYS_MODULE'] }));
      expect(e1).toMatchObject({ code: 'PermissionDenied', rule: 'capabilities', field: 'caps[0]' });
      expect(e1.message).toContain('CAP_SYS_ADMIN is beyond the default capabilities');
      const e2 = await failure(c.exec({ id, process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 }, capabilities: { bounding: ['CAP_KILL', 'CAP_SYS_MODULE'] } } }));
      expect(e2).toMatchObject({ code: 'PermissionDenied', rule: 'capabilities', field: 'process.capabilities.bounding[1]' });
      // And an update that would open every device (or move host processes in through cgroup.procs).
      expect(await failure(c.update({ id, resources: { devices: [{ allow: true, access: 'rwm' }] } }))).toMatchObject({ code: 'PermissionDenied', rule: 'devices', field: 'resources.devices[0]' });
      expect(await failure(c.update({ id, resources: { unified: { 'cgroup.procs': '1' } } }))).toMatchObject({ code: 'PermissionDenied', rule: 'cgroupFiles', field: 'resources.unified["cgroup.procs"]' });
      expect((await h.sup.store.read(1)).filter((x) => x.containerId === id).length).toBe(before); // no exec-start, no update
      await c.destroy({ id, force: true });

      expect([marker, ...etcMade].filter((p) => existsSync(p))).toEqual([]);
    });
  }

  it('a refusal is answered with status 403 and the rule on the wire; an unknown token is refused outright (rule identity)', async () => {
    const m = await nc.request('cordon.pol-a.cmd.create', JSON.stringify({ id: 'wire-1', bundle: '/etc' }), { timeout: 5000 });
    expect(m.headers?.get('Nats-Service-Error-Code')).toBe('403');
    expect(m.json()).toMatchObject({ error: { code: 'PermissionDenied', rule: 'bundleRoots', field: 'bundle' } });
    const guess = new CordonClient(nc, { commandToken: 'ops-token?' });
    expect(await failure(guess.host('pol-a').list({}))).toMatchObject({ code: 'PermissionDenied', rule: 'identity', field: 'Cordon-Token' });
    await leftNothing(h, 'wire-1');
  });

  it('a verb outside the grant is refused (rule verbs) whatever the request; the verbs of the grant are served', async () => {
    const watch = new CordonClient(nc, { commandToken: 'watch-token' }).host('pol-a');
    expect(await watch.list({})).toMatchObject({ host: 'pol-a' });
    const b = rootBundle();
    const e = await failure(watch.create({ id: 'vb-1', bundle: b.dir }));
    expect(e).toMatchObject({ code: 'PermissionDenied', rule: 'verbs' });
    expect(e.message).toContain('policy rule "verbs": the verb "create" is not in the caller\'s grant refused for caller "token:watch" (grant "watch")');
    await leftNothing(h, 'vb-1');
  });
});

describe('what is checked is what runs', () => {
  it('a create given the parsed config does not read config.json again: a hook written into the file after the check never runs', async () => {
    const marker = join(data, 'swapped-hook-ran');
    const b = rootBundle((s) => void (s.process.args = ['true']));
    const checked = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    // The file changes after the command service read it (what a swap between check and use would do).
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify({ ...checked, hooks: { prestart: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${marker}`] }] } }));
    const nul = openSync('/dev/null', 'r+');
    try {
      await h.sup.create('swap-1', { bundle: b.dir, spec: checked, stdio: [nul, nul, nul] });
    } finally {
      closeSync(nul);
    }
    expect(existsSync(marker)).toBe(false);
    const stored = JSON.parse(readFileSync(join(h.root, 'swap-1', 'state.json'), 'utf8')) as { config: { hooks?: Record<string, unknown> } };
    expect(stored.config.hooks).toEqual({});
    await h.sup.destroy('swap-1', { force: true });
  });
});

describe('a caller whose grant allows more', () => {
  it('binds an allowed host path, runs hooks and execs with an allowed capability; is still refused what its grant does not allow', async () => {
    const a = ops.host('pol-a');
    const hookRan = join(data, 'hook-ran');
    const b = rootBundle((s) => {
      s.process.args = ['sh', '-c', 'echo from-the-container > /data/out; exec sleep 600'];
      s.mounts.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] });
      s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${hookRan}`] }] };
    });
    await a.create({ id: 'ops-1', bundle: b.dir });
    expect(existsSync(hookRan)).toBe(true);
    await a.start({ id: 'ops-1' });
    const out = join(data, 'out');
    await until(() => (existsSync(out) ? true : undefined), 10_000, 'the container writes into the bind mount');
    expect(readFileSync(out, 'utf8')).toBe('from-the-container\n');

    const ex = await a.exec({ id: 'ops-1', args: ['sh', '-c', 'grep CapEff /proc/self/status'], caps: ['CAP_SYS_PTRACE'], output: true });
    expect(ex.exitCode).toBe(0);
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(ex.stdout ?? '')?.[1] ?? '0'}`);
    expect((capEff >> 19n) & 1n).toBe(1n); // CAP_SYS_PTRACE
    expect((capEff >> 21n) & 1n).toBe(0n); // not CAP_SYS_ADMIN

    expect(await failure(a.exec({ id: 'ops-1', args: ['true'], caps: ['CAP_SYS_ADMIN'] }))).toMatchObject({ code: 'PermissionDenied', rule: 'capabilities', field: 'caps[0]' });
    const bindRoot = { ...b.spec, hooks: undefined, mounts: [...b.spec.mounts.slice(0, 7), { destination: '/host', type: 'bind', source: '/', options: ['rbind'] }] };
    expect(await failure(a.create({ id: 'ops-2', config: bindRoot as unknown as Record<string, unknown>, rootfs: b.rootfs }))).toMatchObject({ rule: 'bindMounts', field: 'mounts[7].source' });
    const cg = { ...b.spec, hooks: undefined, mounts: b.spec.mounts.slice(0, 7), linux: { ...b.spec.linux, cgroupsPath: '/system.slice' } };
    expect(await failure(a.create({ id: 'ops-2', config: cg as unknown as Record<string, unknown>, rootfs: b.rootfs }))).toMatchObject({ rule: 'cgroupsPath', field: 'linux.cgroupsPath' });
    await leftNothing(h, 'ops-2');

    // An exec joins the container: one who may not bind `data` may not exec into a container that has it.
    const joined = await failure(anon.host('pol-a').exec({ id: 'ops-1', args: ['cat', '/data/out'] }));
    expect(joined).toMatchObject({ code: 'PermissionDenied', rule: 'bindMounts', field: 'mounts[7].source' });
    expect(joined.message).toContain('the container "ops-1" the exec joins');

    await a.destroy({ id: 'ops-1', force: true });
  });
});

describe('the NATS user from Nats-Request-Info (two accounts, a shared service import)', () => {
  let acc: NatsServer;
  let supNc: NatsConnection;
  let uh: TestHost;
  let alice: CordonClient;
  let bob: CordonClient;
  beforeAll(async () => {
    acc = await NatsServer.start({
      jetstream: false,
      config: `accounts {
  SVC: { users: [ { user: sup, password: s } ], exports: [ { service: "cordon.*.cmd.>" } ] }
  OPS: { users: [ { user: alice, password: a }, { user: bob, password: b } ],
         imports: [ { service: { account: SVC, subject: "cordon.*.cmd.>" }, share: true } ] }
}`,
    });
    supNc = await connectNats({ servers: acc.url, user: 'sup', pass: 's' });
    // Authenticated: no trusted network needed. alice is mapped to the ops grant; bob to nothing (anonymous).
    const { trustedNetwork: _t, tokens: _k, ...rest } = policyFor();
    uh = await startHost(supNc, 'pol-u', {}, { policy: { ...rest, natsUsers: [{ account: 'OPS', user: 'alice', grant: 'ops' }] } });
    alice = await CordonClient.connect({ servers: acc.url, user: 'alice', pass: 'a', timeoutMs: 20_000 });
    bob = await CordonClient.connect({ servers: acc.url, user: 'bob', pass: 'b', timeoutMs: 20_000 });
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await uh?.cleanup();
    await supNc?.close();
    await acc?.stop();
  });

  it('alice (mapped to the ops grant) execs with CAP_SYS_PTRACE; bob (unmapped: anonymous) is refused, named as nats:OPS/bob, even with a forged header', async () => {
    const b = rootBundle((s) => void (s.process.args = ['sleep', '600']));
    await alice.host('pol-u').create({ id: 'u-1', bundle: b.dir });
    await alice.host('pol-u').start({ id: 'u-1' });
    expect(await alice.host('pol-u').exec({ id: 'u-1', args: ['true'], caps: ['CAP_SYS_PTRACE'] })).toMatchObject({ exitCode: 0 });
    const e = await failure(bob.host('pol-u').exec({ id: 'u-1', args: ['true'], caps: ['CAP_SYS_PTRACE'] }));
    expect(e).toMatchObject({ code: 'PermissionDenied', rule: 'capabilities', field: 'caps[0]' });
    expect(e.message).toContain('refused for caller "nats:OPS/bob" (grant "default")');
    // nats-server replaces a client's own Nats-Request-Info on the way through the import.
    const hdr = headers();
    hdr.set('Nats-Request-Info', JSON.stringify({ acc: 'OPS', user: 'alice' }));
    const forged = await bob.nc.request('cordon.pol-u.cmd.exec', JSON.stringify({ id: 'u-1', args: ['true'], caps: ['CAP_SYS_PTRACE'] }), { timeout: 10_000, headers: hdr });
    expect(forged.json()).toMatchObject({ error: { code: 'PermissionDenied', rule: 'capabilities' } });
    expect((forged.json() as { error: { message: string } }).error.message).toContain('nats:OPS/bob');
    await alice.host('pol-u').destroy({ id: 'u-1', force: true });
  });
});

describe('a connection without authentication', () => {
  it('serveCommands refuses to start unless the network is said to be trusted, naming the way to say so', async () => {
    const root = mkdtempSync('/tmp/cordon-policy-untrusted-');
    const sup = await Supervisor.start({ root, host: 'pol-x' });
    try {
      let err: unknown;
      try {
        serveCommands(sup, nc, { host: 'pol-x', policy: { bundleRoots: [roots] } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UntrustedNetworkError);
      expect(err).toMatchObject({ code: 'PermissionDenied', field: 'trustedNetwork' });
      expect((err as Error).message).toMatch(/not authenticated .*neither auth_required nor tls_verify.*--trusted-network/);
      expect((await failure(anon.host('pol-x').list({}))).code).toBe('NoResponders');
      const svc = serveCommands(sup, nc, { host: 'pol-x', trustedNetwork: true });
      expect(await anon.host('pol-x').list({})).toEqual({ host: 'pol-x', containers: [] });
      await svc.stop();
    } finally {
      await sup.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('startNatsSupervisor fails before the supervisor starts (or, with commandsOptional, runs without commands); a bad policy fails first', async () => {
    const root = `/tmp/cordon-policy-never-${process.pid}`;
    await expect(startNatsSupervisor({ root, host: 'pol-y' }, { nats: { servers: srv.url } })).rejects.toBeInstanceOf(UntrustedNetworkError);
    expect(existsSync(root)).toBe(false);
    await expect(startNatsSupervisor({ root, host: 'pol-y' }, { nats: { servers: srv.url }, policy: { trustedNetwork: true, bundleRoot: ['/srv'] } as unknown as CommandPolicyInput })).rejects.toBeInstanceOf(CommandPolicyError);
    expect(existsSync(root)).toBe(false);
    const d = await startNatsSupervisor({ root, host: 'pol-y' }, { nats: { servers: srv.url }, commandsOptional: true });
    try {
      expect(d.commands).toBeUndefined();
      expect(d.commandsRefused).toBeInstanceOf(UntrustedNetworkError);
      expect((await failure(anon.host('pol-y').list({}))).code).toBe('NoResponders');
    } finally {
      await d.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('cordon daemon on a server without authentication', () => {
  it('without --trusted-network it says it serves no commands and still forwards events to JetStream; a bad --policy file stops it, naming the field', async () => {
    const js = await NatsServer.start({ jetstream: true });
    const root = freshRoot('cordon-policy-daemon');
    const host = `pold${process.pid}`;
    const client = await CordonClient.connect({ servers: js.url, timeoutMs: 10_000 });
    const d = startCordon(root, ['daemon', '--nats', js.url, '--host', host], { timeoutMs: 60_000 });
    try {
      await waitFor('the daemon up', () => /events to JetStream/.test(readFileSync(d.stderrFile, 'utf8')), 20_000);
      expect(readFileSync(d.stderrFile, 'utf8')).toMatch(/cordon daemon: command service: not serving commands: .*not authenticated.*--trusted-network/);
      expect((await failure(client.host(host).list({}))).code).toBe('NoResponders');
      const b = makeBundle({ spec: (s) => void (s.process.args = ['true']) });
      outside.push(b);
      const created = firstValueFrom(client.events$({ host }, { sinceSeq: 1 }).pipe(filter((e) => e.action === 'create'), take(1)));
      const run = await startCordon(root, ['run', '--bundle', b.dir, 'evt-1'], { timeoutMs: 20_000 }).done;
      expect(run.code, run.stderr).toBe(0);
      expect(await created).toMatchObject({ host, containerId: 'evt-1', action: 'create' });
    } finally {
      d.child.kill('SIGTERM');
      await d.done;
      await client.close();
      await destroyAll(root);
      rmSync(root, { recursive: true, force: true });
      await js.stop();
    }
    const bad = `${root}-policy.json`;
    writeFileSync(bad, JSON.stringify({ trustedNetwork: true, grants: { ops: { verbs: ['*'], bypass: ['root'] } } }));
    const root2 = freshRoot('cordon-policy-daemon2');
    try {
      const r = await startCordon(root2, ['daemon', '--nats', srv.url, '--host', `${host}b`, '--policy', bad], { timeoutMs: 20_000 }).done;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cordon: BadRequest: command policy ${bad}: grants.ops.bypass[0]: unknown rule "root"`);
    } finally {
      rmSync(root2, { recursive: true, force: true });
    }
    // Without NATS there are no commands to govern: the flags are refused, not ignored.
    const noNats = freshRoot('cordon-policy-daemon3');
    for (const args of [['--trusted-network'], ['--policy', bad]]) {
      const r = await startCordon(noNats, ['daemon', ...args], { timeoutMs: 20_000 }).done;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`${args[0]} needs --nats`);
    }
    rmSync(noNats, { recursive: true, force: true });
    rmSync(bad, { force: true });
  }, 60_000);
});
