/**
 * The supervisor with NATS and real containers (root, busybox bundles): 100 container transitions while the
 * server is killed for several seconds all land in CORDON_EVENTS exactly once and in order; a supervisor
 * whose journal is gone (or whose whole state dir is empty) rebuilds its containers from JetStream and
 * reconciles them with the kernel; a second supervisor — library or `cordon daemon` — with the same host id
 * is refused. The daemon test uses dist/ (bin/cordon.js): run `npx tsc -p tsconfig.json` first.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAll } from '../fixtures/containers.js';
import { Supervisor, type SupervisorOptions } from '../../actors/supervisor.js';
import { HostLeaseHeldError } from '../../events/host-lease.js';
import { eventsJetStream, readHostEvents } from '../../events/jetstream-log.js';
import { connectNats } from '../../events/nats-connection.js';
import type { CordonEvent } from '../../events/schema.js';
import { type Bundle, REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { removeIoDir, startCordon, waitFor } from '../cli/helpers.js';

const roots: string[] = [];
const bundles: Bundle[] = [];
const sups: Supervisor[] = [];
const nul = openSync('/dev/null', 'r+');
const STDIO = [nul, nul, nul] as const;
let srv: NatsServer;

beforeAll(async () => {
  srv = await NatsServer.start();
});
afterAll(async () => {
  for (const s of sups) await s.stop().catch(() => {});
  for (const root of roots) {
    await destroyAll(root);
    rmSync(root, { recursive: true, force: true });
  }
  for (const b of bundles) b.cleanup();
  closeSync(nul);
  removeIoDir();
  await srv?.stop();
});

const hostId = () => `h${randomUUID().slice(0, 8)}`;
function freshRoot(name: string): string {
  const r = mkdtempSync(`/tmp/cordon-it-nats-${name}-`);
  roots.push(r);
  return r;
}
function bundle(args: string[]): Bundle {
  const b = makeBundle({ spec: (s) => void (s.process.args = args) });
  bundles.push(b);
  return b;
}
async function supervisor(root: string, host: string, errors: Error[] = [], extra: Partial<SupervisorOptions> = {}): Promise<Supervisor> {
  const s = await Supervisor.start({
    root,
    host,
    nats: { servers: srv.url, timeoutMs: 500 },
    natsOutbox: { maxBackoffMs: 250, publishTimeoutMs: 1000 },
    onError: (e) => errors.push(e),
    ...extra,
  });
  sups.push(s);
  return s;
}
async function stopSup(s: Supervisor): Promise<void> {
  await s.stop();
  sups.splice(sups.indexOf(s), 1);
}

/** Every event of the host in the stream (`count` of them expected), in stream order, with subjects. */
async function streamed(host: string): Promise<Array<{ event: CordonEvent; streamSeq: number }>> {
  const nc = await connectNats({ servers: srv.url });
  try {
    const j = await eventsJetStream(nc);
    const info = await j.jsm.streams.info('CORDON_EVENTS', { subjects_filter: `cordon.${host}.events.>` });
    const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    const out: Array<{ event: CordonEvent; streamSeq: number }> = [];
    if (total > 0) {
      await new Promise<void>((resolve, reject) => {
        readHostEvents(j.js, host, Number.MAX_SAFE_INTEGER, (s) => {
          out.push(s);
          if (out.length === total) resolve();
        }).catch(reject);
      });
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('supervisor → JetStream with real containers', () => {
  it('100 transitions (25 containers × create/start/exit/destroy) with the server killed for 4 s: all in the stream once, in order', async () => {
    const root = freshRoot('outage');
    const host = hostId();
    const errors: Error[] = [];
    const sup = await supervisor(root, host, errors);
    const b = bundle(['true']);
    let killedAt = 0;
    let appendedWhileDown = 0;
    for (let i = 0; i < 25; i++) {
      if (i === 5) {
        await srv.kill();
        killedAt = Date.now();
      }
      if (i === 20) {
        appendedWhileDown = sup.store.lastSeq() - sup.outbox!.publishedSeq;
        await new Promise((r) => setTimeout(r, Math.max(0, 4000 - (Date.now() - killedAt))));
        await srv.restart();
      }
      const id = `t${i}`;
      await sup.create(id, { bundle: b.dir, stdio: STDIO });
      await sup.start(id);
      await sup.waitFor(id, ['stopped'], 20_000);
      await sup.destroy(id);
    }
    expect(appendedWhileDown).toBeGreaterThanOrEqual(50); // containers kept running and recording while NATS was gone
    const journal = await sup.store.read();
    expect(journal).toHaveLength(100);
    await sup.outbox!.waitPublished(100, 30_000);
    expect(errors.some((e) => /publishing events to JetStream/.test(e.message))).toBe(true);

    const got = await streamed(host);
    expect(got).toHaveLength(100);
    expect(got.map((s) => s.event)).toEqual(journal);
    expect(got.map((s) => s.event.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (let i = 1; i < got.length; i++) expect(got[i].streamSeq).toBeGreaterThan(got[i - 1].streamSeq);
    for (let i = 0; i < 25; i++) {
      const mine = got.filter((s) => s.event.containerId === `t${i}`).map((s) => s.event);
      expect(mine.map((e) => [e.containerSeq, e.action])).toEqual([
        [1, 'create'],
        [2, 'start'],
        [3, 'exit'],
        [4, 'destroy'],
      ]);
    }
    await stopSup(sup);
  }, 120_000);

  it('journal lost, state dirs intact: the log comes back from JetStream, the live container is re-adopted, the exited one stays stopped', async () => {
    const root = freshRoot('restore');
    const host = hostId();
    const a = await supervisor(root, host);
    const sleeper = bundle(['sleep', '1000']);
    const quick = bundle(['true']);
    await a.create('keep', { bundle: sleeper.dir, stdio: STDIO });
    await a.start('keep');
    await a.create('done', { bundle: quick.dir, stdio: STDIO });
    await a.start('done');
    await a.waitFor('done', ['stopped'], 20_000);
    const before = await a.store.read();
    await a.outbox!.waitPublished(before.length);
    await stopSup(a); // containers keep running; the lease is released
    rmSync(join(root, 'events.journal'));

    const b = await supervisor(root, host);
    expect(b.outbox!.report.imported).toBe(before.length);
    expect(await b.store.read(1).then((es) => es.slice(0, before.length))).toEqual(before);
    expect(b.recovery.adopted).toEqual(['keep']);
    expect(b.recovery.exitedWhileDown).toEqual([]);
    expect(b.stateOf('keep')).toBe('running');
    expect(b.stateOf('done')).toBe('stopped');
    expect(b.contextOf('done')?.exit?.exitCode).toBe(0);

    await b.kill('keep', 9);
    await b.waitFor('keep', ['stopped'], 20_000);
    await b.destroy('keep');
    await b.destroy('done');
    const after = await b.store.read();
    await b.outbox!.waitPublished(after.length);
    expect((await streamed(host)).map((s) => s.event)).toEqual(after);
    expect(after.slice(before.length).map((e) => [e.containerId, e.action])).toEqual([
      ['keep', 'kill'],
      ['keep', 'exit'],
      ['keep', 'destroy'],
      ['done', 'destroy'],
    ]);
    await stopSup(b);
  }, 60_000);

  it('an empty state dir with an existing host id: machines rebuilt from JetStream, a container gone while down recorded as exited', async () => {
    const root = freshRoot('lost');
    const host = hostId();
    const a = await supervisor(root, host);
    const sleeper = bundle(['sleep', '1000']);
    const quick = bundle(['sh', '-c', 'exit 3']);
    await a.create('gone', { bundle: sleeper.dir, stdio: STDIO });
    await a.start('gone');
    await a.create('fin', { bundle: quick.dir, stdio: STDIO });
    await a.start('fin');
    await a.waitFor('fin', ['stopped'], 20_000);
    await a.create('old', { bundle: quick.dir, stdio: STDIO });
    await a.destroy('old');
    const before = await a.store.read();
    await a.outbox!.waitPublished(before.length);
    await stopSup(a);
    // The machine is lost: its containers die with it (their events stay in that root's journal), its state dir is gone.
    await destroyAll(root);

    const empty = freshRoot('empty');
    expect(readdirSync(empty)).toEqual([]);
    const c = await supervisor(empty, host);
    expect(c.outbox!.report.imported).toBe(before.length);
    expect(c.recovery.exitedWhileDown).toEqual(['gone']);
    expect(c.ids()).toEqual(['fin', 'gone']);
    expect(c.stateOf('gone')).toBe('stopped');
    expect(c.stateOf('fin')).toBe('stopped');
    expect(c.contextOf('fin')?.exit?.exitCode).toBe(3);
    const after = await c.store.read();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).map((e) => [e.seq, e.containerId, e.action, e.attributes.unknown])).toEqual([[before.length + 1, 'gone', 'exit', true]]);
    await c.outbox!.waitPublished(after.length);
    expect((await streamed(host)).map((s) => s.event)).toEqual(after);
    await stopSup(c);
  }, 60_000);

  it('an empty state dir while a container lives on: its state.json and network.json are rebuilt from the create event in JetStream, it is re-adopted, and kill and destroy work (cgroups and veth removed)', async () => {
    const root = freshRoot('live');
    const host = hostId();
    const a = await supervisor(root, host);
    const sleeper = bundle(['sleep', '1000']);
    // With a veth interface: its network.json must come back too, so delete tears down what it lists.
    const hostEnd = `r${host}`;
    await a.create('alive', { bundle: sleeper.dir, stdio: STDIO, network: { interfaces: [{ type: 'veth', name: 'eth0', hostInterfaceName: hostEnd, address: '10.215.7.2/24' }] } });
    await a.start('alive');
    const original = JSON.parse(readFileSync(join(root, 'alive', 'state.json'), 'utf8')) as { pid: number; cgroupPaths: Record<string, string> };
    const originalNet = readFileSync(join(root, 'alive', 'network.json'), 'utf8');
    expect(existsSync(`/sys/class/net/${hostEnd}`)).toBe(true);
    const before = await a.store.read();
    await a.outbox!.waitPublished(before.length);
    await stopSup(a);
    rmSync(root, { recursive: true, force: true });

    const empty = freshRoot('live-empty');
    const c = await supervisor(empty, host);
    try {
      expect(c.recovery.restoredRecords).toEqual(['alive']);
      expect(c.recovery.adopted).toEqual(['alive']);
      expect(c.stateOf('alive')).toBe('running');
      expect(JSON.parse(readFileSync(join(empty, 'alive', 'state.json'), 'utf8'))).toEqual(original);
      expect(JSON.parse(readFileSync(join(empty, 'alive', 'network.json'), 'utf8'))).toEqual(JSON.parse(originalNet));
      await c.kill('alive', 9);
      await c.waitFor('alive', ['stopped'], 20_000);
      await c.destroy('alive');
      expect(existsSync(`/proc/${original.pid}`)).toBe(false);
      for (const dir of Object.values(original.cgroupPaths)) expect(existsSync(dir), dir).toBe(false);
      expect(existsSync(join(empty, 'alive'))).toBe(false);
      expect(existsSync(`/sys/class/net/${hostEnd}`)).toBe(false);
    } finally {
      await stopSup(c);
    }
  }, 60_000);

  it('a second supervisor with the same host id refuses to start (HostLeaseHeldError) and leaves nothing open', async () => {
    const host = hostId();
    const first = await supervisor(freshRoot('lease1'), host);
    const root2 = freshRoot('lease2');
    const fds = readdirSync('/proc/self/fd').length;
    const err = await supervisor(root2, host).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostLeaseHeldError);
    expect((err as Error).message).toMatch(`host ${host}: its event log is held by another supervisor (pid ${process.pid}`);
    await new Promise((r) => setTimeout(r, 200));
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fds);
    await stopSup(first);
    const again = await supervisor(root2, host);
    await stopSup(again);
  });

  it('`cordon daemon --nats URL --host ID --inspect` forwards CLI verbs\' events under its host id, serves remote commands and publishes snapshots; a second daemon (CORDON_NATS_URL) with that host id exits 1 naming the holder', async () => {
    expect(existsSync(join(REPO_ROOT, 'dist/events/jetstream-outbox.js')), 'dist/ (run npx tsc -p tsconfig.json)').toBe(true);
    const host = hostId();
    const root = freshRoot('daemon');
    const b = bundle(['sh', '-c', 'exit 5']);
    // The test server has no authentication: the daemon serves commands only when told the network is trusted.
    const policyFile = `${root}-policy.json`;
    writeFileSync(policyFile, JSON.stringify({ bundleRoots: ['/tmp'] }));
    const d1 = startCordon(root, ['daemon', '--nats', srv.url, '--host', host, '--inspect', '--trusted-network', '--policy', policyFile], { timeoutMs: 60_000 });
    const watcher = await connectNats({ servers: srv.url });
    const snapshots: string[] = [];
    const inspected = watcher.subscribe(`cordon.${host}.inspect.>`, { callback: (_e, m) => snapshots.push(m.subject) });
    try {
      await waitFor('daemon up', () => /events to JetStream/.test(readFileSync(d1.stderrFile, 'utf8')), 15_000);
      const run = await startCordon(root, ['run', '--bundle', b.dir, 'cli-1'], { timeoutMs: 20_000 }).done;
      expect(run.code).toBe(5);
      // The daemon serves its host's commands: the remote CLI lists through it, and service discovery finds it.
      const listed = await startCordon(root, ['--host', host, '--nats', srv.url, 'list', '--format', 'json'], { timeoutMs: 20_000 }).done;
      expect(listed.code, listed.stderr).toBe(0);
      const info = await watcher.request('$SRV.INFO.cordon', '', { timeout: 2000 });
      expect(info.json<{ name: string; metadata?: Record<string, string> }>().name).toBe('cordon');
      await waitFor('snapshots of cli-1 on the inspect subject', () => snapshots.includes(`cordon.${host}.inspect.cli-1`), 10_000);
      const got = await waitFor('events in the stream', async () => {
        const es = (await streamed(host)).map((s) => s.event);
        return es.some((e) => e.action === 'destroy') ? es : undefined;
      }, 15_000);
      expect(got.map((e) => [e.seq, e.containerId, e.action, e.host])).toEqual([
        [1, 'cli-1', 'create', host],
        [2, 'cli-1', 'start', host],
        [3, 'cli-1', 'exit', host],
        [4, 'cli-1', 'destroy', host],
      ]);
      process.env.CORDON_NATS_URL = srv.url;
      let d2;
      try {
        d2 = await startCordon(freshRoot('daemon2'), ['daemon', '--host', host], { timeoutMs: 20_000 }).done;
      } finally {
        delete process.env.CORDON_NATS_URL;
      }
      expect(d2.code).toBe(1);
      expect(d2.stderr).toMatch(`cordon: HostLeaseHeld: host ${host}: its event log is held by another supervisor (pid ${d1.child.pid}`);
    } finally {
      inspected.unsubscribe();
      await watcher.close();
      d1.child.kill('SIGTERM');
      const r = await d1.done;
      rmSync(policyFile, { force: true });
      expect(r.code).toBe(0);
    }
  }, 60_000);
});
