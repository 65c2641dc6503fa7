/**
 * The command service against a real nats-server and real containers: every verb's request is checked (a bad
 * one is answered with bad-request naming the field, never a timeout, and changes nothing on the host), the
 * lifecycle runs end to end through CordonClient, config-object creates, checkpoint/restore refused where the
 * machine says so, and the NATS service discovery protocol ($SRV.PING/INFO/STATS in all three
 * subject forms) reports the service and per-verb statistics.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CordonClient, CordonCommandError } from '../../client/cordon-client.js';
import { connectNats } from '../../events/nats-connection.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { type TestHost, failure, startHost } from './hosts.js';

let srv: NatsServer;
let nc: NatsConnection;
let h: TestHost;
let client: CordonClient;
const bundles: Bundle[] = [];

beforeAll(async () => {
  srv = await NatsServer.start({ jetstream: false });
  nc = await connectNats({ servers: srv.url });
  h = await startHost(nc, 'cmd-a');
  client = new CordonClient(nc, { timeoutMs: 20_000 });
});

afterAll(async () => {
  await h?.cleanup();
  await nc?.close();
  await srv?.stop();
  for (const b of bundles) b.cleanup();
});

function bundle(args: string[]): Bundle {
  const b = makeBundle({ spec: (s) => void (s.process.args = args) });
  bundles.push(b);
  return b;
}

/** The raw reply body and headers of a request. */
async function raw(verb: string, body: string): Promise<{ body: { error?: { code: string; message: string; field?: string } } & Record<string, unknown>; code?: string; err?: string }> {
  const m = await nc.request(`cordon.cmd-a.cmd.${verb}`, body, { timeout: 5000 });
  return { body: m.json(), code: m.headers?.get('Nats-Service-Error-Code'), err: m.headers?.get('Nats-Service-Error') };
}

describe('request validation', () => {
  const cases: Array<[string, string, string, string | undefined]> = [
    ['start', 'not json', 'BadRequest', undefined],
    ['start', '[1,2]', 'BadRequest', undefined],
    ['start', '{}', 'BadRequest', 'id'],
    ['start', '{"id":7}', 'BadRequest', 'id'],
    ['start', '{"id":"x","force":true}', 'BadRequest', 'force'],
    ['create', '{"id":"x"}', 'BadRequest', 'bundle'],
    ['create', '{"id":"x","bundle":"relative/dir"}', 'BadRequest', 'bundle'],
    ['create', '{"id":"x","bundle":"/b","config":{}}', 'BadRequest', 'bundle'],
    ['create', '{"id":"x","bundle":"/b","rootfs":"/r"}', 'BadRequest', 'rootfs'],
    ['create', '{"id":"x","config":[]}', 'BadRequest', 'config'],
    ['kill', '{"id":"x","signal":"SIGFOO"}', 'BadRequest', 'signal'],
    ['kill', '{"id":"x","signal":99}', 'BadRequest', 'signal'],
    ['kill', '{"id":"x","all":"yes"}', 'BadRequest', 'all'],
    ['exec', '{"id":"x"}', 'BadRequest', 'args'],
    ['exec', '{"id":"x","args":["sh"],"user":{"uid":-1}}', 'BadRequest', 'user'],
    ['exec', '{"id":"x","args":["sh"],"user":{"uid":0,"name":"root"}}', 'BadRequest', 'user'],
    ['exec', '{"id":"x","args":["sh"],"cwd":"tmp"}', 'BadRequest', 'cwd'],
    ['exec', '{"id":"x","args":["sh"],"output":true,"detach":true}', 'BadRequest', 'output'],
    ['destroy', '{"id":"x","force":1}', 'BadRequest', 'force'],
    ['list', '{"all":true}', 'BadRequest', 'all'],
    ['update', '{"id":"x"}', 'BadRequest', 'resources'],
    ['update', '{"id":"x","memory":"lots"}', 'BadRequest', 'memory'],
    ['update', '{"id":"x","cpuShares":-5}', 'BadRequest', 'cpuShares'],
    ['checkpoint', '{"id":"x","imagePath":"img"}', 'BadRequest', 'imagePath'],
    ['restore', '{"id":"x"}', 'BadRequest', 'imagePath'],
    ['frobnicate', '{}', 'UnknownVerb', undefined],
  ];
  for (const [verb, body, code, field] of cases) {
    it(`${verb} ${body} → ${code}${field ? ` naming ${field}` : ''}`, async () => {
      const r = await raw(verb, body);
      expect(r.body.error?.code).toBe(code);
      expect(r.body.error?.field).toBe(field);
      if (field) expect(r.body.error?.message).toContain(field);
      expect(r.code).toBe('400');
      expect(r.err).toBeTruthy();
    });
  }

  it('left nothing on the host', () => {
    expect(h.sup.ids()).toEqual([]);
    expect(readdirSync(h.root).filter((f) => f !== 'events.journal')).toEqual([]);
    expect(readdirSync(h.bundleRoot)).toEqual([]);
  });

  it('an id the runtime refuses is InvalidIdFormat; a missing container is ContainerNotExists (404)', async () => {
    expect((await raw('create', JSON.stringify({ id: '../etc', config: { ociVersion: '1.0.2' }, rootfs: '/tmp' }))).body.error?.code).toBe('InvalidIdFormat');
    const r = await raw('state', '{"id":"nope"}');
    expect(r.body.error?.code).toBe('ContainerNotExists');
    expect(r.code).toBe('404');
  });
});

describe('lifecycle through CordonClient', () => {
  it('create → start → pause → stats → resume → update → exec → kill → destroy, each reply typed', async () => {
    const b = bundle(['sleep', '600']);
    const a = client.host('cmd-a');
    const c = await a.create({ id: 'web-1', bundle: b.dir });
    expect(c).toMatchObject({ id: 'web-1', state: 'created' });
    expect(c.pid).toBeGreaterThan(1);
    expect((await a.state({ id: 'web-1' })).oci.status).toBe('created');
    expect(await a.start({ id: 'web-1' })).toEqual({ id: 'web-1', state: 'running' });
    expect((await failure(a.start({ id: 'web-1' }))).code).toBe('ContainerNotStopped');
    expect(await a.pause({ id: 'web-1' })).toEqual({ id: 'web-1', state: 'paused' });
    expect((await failure(a.exec({ id: 'web-1', args: ['true'] }))).code).toBe('ContainerPaused');
    const st = await a.stats({ id: 'web-1' });
    expect(st.data).toHaveProperty('memory');
    expect(st.data).toHaveProperty('pids');
    expect(await a.resume({ id: 'web-1' })).toEqual({ id: 'web-1', state: 'running' });
    expect(await a.update({ id: 'web-1', pidsLimit: 50, memory: '64m' })).toEqual({ id: 'web-1', state: 'running' });
    const ex = await a.exec({ id: 'web-1', args: ['sh', '-c', 'exit 3'] });
    expect(ex).toMatchObject({ id: 'web-1', exitCode: 3, signal: null });
    expect(ex.execId).toMatch(/^[0-9a-f-]{36}$/);
    expect(ex.stdout).toBeUndefined();
    const out = await a.exec({ id: 'web-1', args: ['sh', '-c', 'echo out; echo err >&2; head -c 300000 /dev/zero | tr "\\0" x; exit 2'], output: true });
    expect(out).toMatchObject({ exitCode: 2, truncated: true });
    expect(out.stdout?.startsWith('out\nxxx')).toBe(true);
    expect(out.stdout?.length).toBe(256 << 10);
    expect(out.stderr).toBe('err\n');
    const det = await a.exec({ id: 'web-1', args: ['sleep', '1'], detach: true });
    expect(det.exitCode).toBeUndefined();
    expect(det.pid).toBeGreaterThan(1);
    const list = await a.list({});
    expect(list.host).toBe('cmd-a');
    expect(list.containers).toMatchObject([{ id: 'web-1', state: 'running', pid: c.pid }]);
    expect(await a.kill({ id: 'web-1', signal: 'KILL' })).toMatchObject({ id: 'web-1', signal: 9 });
    await h.sup.waitFor('web-1', ['stopped'], 10_000);
    expect(await a.destroy({ id: 'web-1' })).toEqual({ id: 'web-1', destroyed: true });
    expect((await failure(a.state({ id: 'web-1' }))).code).toBe('ContainerNotExists');
    expect(existsSync(join(h.root, 'web-1'))).toBe(false);
  });

  it('checkpoint and restore: the machine refuses a checkpoint of a created or missing container and a restore of a running one; nothing is made', async () => {
    // A checkpoint the machine takes runs CRIU (test/integration/checkpoint.test.ts drives the same verbs).
    const b = bundle(['sleep', '600']);
    const a = client.host('cmd-a');
    await a.create({ id: 'ck-1', bundle: b.dir });
    expect((await failure(a.checkpoint({ id: 'ck-1', imagePath: '/tmp/ck-img-created' }))).code).toBe('ContainerNotRunning'); // created: not yet
    expect(existsSync('/tmp/ck-img-created')).toBe(false);
    await a.start({ id: 'ck-1' });
    expect((await failure(a.restore({ id: 'ck-1', imagePath: '/tmp/ck-img' }))).code).toBe('ContainerNotStopped');
    expect((await failure(a.checkpoint({ id: 'nope' }))).code).toBe('ContainerNotExists');
    expect(h.sup.stateOf('ck-1')).toBe('running');
    await a.destroy({ id: 'ck-1', force: true });
  });

  it('create from an OCI config object and a rootfs path: runs; its generated bundle goes with destroy', async () => {
    const b = bundle(['sh', '-c', 'exit 5']);
    const a = client.host('cmd-a');
    const config = { ...b.spec, process: { ...b.spec.process, args: ['sh', '-c', 'exit 5'] } } as unknown as Record<string, unknown>;
    await a.create({ id: 'cfg-1', config, rootfs: b.rootfs });
    expect(existsSync(join(h.bundleRoot, 'cfg-1', 'config.json'))).toBe(true);
    await a.start({ id: 'cfg-1' });
    await h.sup.waitFor('cfg-1', ['stopped'], 10_000);
    expect(h.sup.contextOf('cfg-1')?.exit?.exitCode).toBe(5);
    await a.destroy({ id: 'cfg-1' });
    expect(existsSync(join(h.bundleRoot, 'cfg-1'))).toBe(false);
  });

  it('a bad config object is ConfigInvalid naming the JSON path, and leaves no bundle, state dir or container', async () => {
    const b = bundle(['true']);
    const config = { ...b.spec, process: { ...b.spec.process, rlimits: [{ type: 'RLIMIT_FOO', hard: 1, soft: 1 }] } } as unknown as Record<string, unknown>;
    const e = await failure(client.host('cmd-a').create({ id: 'cfg-bad', config, rootfs: b.rootfs }));
    expect(e.code).toBe('ConfigInvalid');
    expect(e.field).toBe('process.rlimits[0].type');
    expect(e.message).toContain('RLIMIT_FOO');
    const noRoot = await failure(client.host('cmd-a').create({ id: 'cfg-bad', config: { ...config, root: { path: 'rootfs' } } }));
    expect(noRoot).toMatchObject({ code: 'BadRequest', field: 'rootfs' });
    expect(existsSync(join(h.bundleRoot, 'cfg-bad'))).toBe(false);
    expect(existsSync(join(h.root, 'cfg-bad'))).toBe(false);
    expect(h.sup.ids()).not.toContain('cfg-bad');
  });

  it('a terminal config is unsupported over NATS (no console socket), naming process.terminal, and leaves nothing', async () => {
    const b = bundle(['sh']);
    const config = { ...b.spec, process: { ...b.spec.process, terminal: true } } as unknown as Record<string, unknown>;
    const e = await failure(client.host('cmd-a').create({ id: 'tty-1', config, rootfs: b.rootfs }));
    expect(e).toMatchObject({ code: 'Unsupported', field: 'process.terminal' });
    expect(existsSync(join(h.bundleRoot, 'tty-1'))).toBe(false);
    expect(existsSync(join(h.root, 'tty-1'))).toBe(false);
  });

  it('stop() does not wait for an exec that runs on: it returns within drainMs', async () => {
    const b = bundle(['sleep', '600']);
    const c2 = await startHost(nc, 'cmd-drain');
    try {
      const d = client.host('cmd-drain');
      await d.create({ id: 'dr-1', bundle: b.dir });
      await d.start({ id: 'dr-1' });
      const pending = d.exec({ id: 'dr-1', args: ['sleep', '30'] }, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await c2.svc.stop();
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(1900);
      expect(took).toBeLessThan(3000);
      void pending;
    } finally {
      await c2.cleanup();
    }
  });

  it('16 containers driven concurrently: every create, start and destroy answered, the log gap-free per container', async () => {
    const b = bundle(['sleep', '600']);
    const a = client.host('cmd-a');
    const ids = Array.from({ length: 16 }, (_, i) => `par-${i}`);
    const t0 = Date.now();
    const created = await Promise.all(ids.map((id) => a.create({ id, bundle: b.dir })));
    expect(new Set(created.map((c) => c.pid)).size).toBe(16);
    await Promise.all(ids.map((id) => a.start({ id })));
    expect((await a.list({})).containers.filter((c) => c.id.startsWith('par-')).map((c) => c.state)).toEqual(ids.map(() => 'running'));
    await Promise.all(ids.map((id) => a.destroy({ id, force: true })));
    console.log(`16 concurrent create+start+destroy over NATS: ${Date.now() - t0} ms`);
    expect(h.sup.ids().filter((id) => id.startsWith('par-'))).toEqual([]);
    const events = await h.sup.store.read(1);
    for (const id of ids) {
      const mine = events.filter((e) => e.containerId === id);
      // delete --force records its SIGKILL before it sends it, then the exit it causes.
      expect(mine.map((e) => e.action)).toEqual(['create', 'start', 'kill', 'exit', 'destroy']);
      expect(mine.map((e) => e.containerSeq)).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it('a supervisor that does not answer in time: timeout after the per-call timeoutMs', async () => {
    const mute = nc.subscribe('cordon.mute.cmd.>', { callback: () => {} });
    await nc.flush();
    try {
      const t0 = Date.now();
      const e = await failure(client.host('mute').list({}, { timeoutMs: 300 }));
      expect(e.code).toBe('Timeout');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      mute.unsubscribe();
    }
  });

  it('a host nobody serves is no-responders at once, not a timeout', async () => {
    const t0 = Date.now();
    expect((await failure(client.host('nobody').list({}))).code).toBe('NoResponders');
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('NATS service discovery', () => {
  it('PING, INFO and STATS answer on $SRV.<VERB>, $SRV.<VERB>.cordon and $SRV.<VERB>.cordon.<id>', async () => {
    const id = h.svc.id;
    for (const verb of ['PING', 'INFO', 'STATS']) {
      for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.cordon`, `$SRV.${verb}.cordon.${id}`]) {
        const r = (await nc.request(subject, '', { timeout: 2000 })).json<Record<string, unknown>>();
        expect(r).toMatchObject({ type: `io.nats.micro.v1.${verb.toLowerCase()}_response`, name: 'cordon', id, version: '0.1.0', metadata: { host: 'cmd-a' } });
      }
    }
    const info = (await nc.request('$SRV.INFO.cordon', '', { timeout: 2000 })).json<{ endpoints: Array<{ name: string; subject: string; queue_group: string }> }>();
    expect(info.endpoints.map((e) => e.name)).toEqual(['create', 'start', 'pause', 'resume', 'kill', 'exec', 'checkpoint', 'restore', 'destroy', 'list', 'state', 'stats', 'update']);
    expect(info.endpoints[0]).toEqual({ name: 'create', subject: 'cordon.cmd-a.cmd.create', queue_group: 'q', metadata: null });
  });

  it('STATS counts requests, errors and processing time per verb', async () => {
    const before = (await nc.request('$SRV.STATS.cordon', '', { timeout: 2000 })).json<{ started: string; endpoints: Array<{ name: string; num_requests: number; num_errors: number; last_error: string; processing_time: number; average_processing_time: number }> }>();
    const list0 = before.endpoints.find((e) => e.name === 'list');
    await client.host('cmd-a').list({});
    await raw('list', '{"x":1}');
    const after = (await nc.request('$SRV.STATS.cordon', '', { timeout: 2000 })).json<typeof before>();
    const list1 = after.endpoints.find((e) => e.name === 'list');
    expect(list1?.num_requests).toBe((list0?.num_requests ?? 0) + 2);
    expect(list1?.num_errors).toBe((list0?.num_errors ?? 0) + 1);
    expect(list1?.last_error).toContain('x: unknown field');
    expect(list1?.processing_time).toBeGreaterThan(0);
    expect(list1?.average_processing_time).toBe(Math.round((list1?.processing_time ?? 0) / (list1?.num_requests ?? 1)));
    expect(Date.parse(after.started)).not.toBeNaN();
  });

  it('hosts() finds the supervisor', async () => {
    const hosts = await client.hosts({ waitMs: 300 });
    expect(hosts).toEqual([{ host: 'cmd-a', id: h.svc.id, version: '0.1.0', metadata: expect.objectContaining({ host: 'cmd-a' }) }]);
  });
});

describe('a reply larger than the server allows', () => {
  it('is answered with reply-too-large, not a timeout', async () => {
    const small = await NatsServer.start({ jetstream: false, config: 'max_payload: 16384' });
    const snc = await connectNats({ servers: small.url });
    const sh = await startHost(snc, 'cmd-small');
    try {
      const b = bundle(['sleep', '600']);
      const c = new CordonClient(snc, { timeoutMs: 20_000 }).host('cmd-small');
      await c.create({ id: 'big', bundle: b.dir });
      await c.start({ id: 'big' });
      expect((await c.exec({ id: 'big', args: ['sh', '-c', 'echo small'], output: true })).stdout).toBe('small\n');
      const e = await failure(c.exec({ id: 'big', args: ['sh', '-c', 'head -c 40000 /dev/zero'], output: true }));
      expect(e.code).toBe('ReplyTooLarge');
      expect(e.message).toContain('16384');
      await c.destroy({ id: 'big', force: true });
    } finally {
      await sh.cleanup();
      await snc.close();
      await small.stop();
    }
  });
});
