/**
 * The supervisor and its event log with real containers (root, private state roots under /tmp): the library's
 * lifecycle events (live and replayed), illegal commands as typed errors that change nothing, recovery after a
 * supervisor process is SIGKILLed (re-adoption, exits while down, exits of adopted containers), `cordon daemon`
 * next to CLI verbs, the `cordon events` stream, two writers on one container, and torn journal tails.
 * Uses dist/ (bin/cordon.js and test/fixtures/supervisor-child.mjs): run `npx tsc -p tsconfig.json` first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { firstValueFrom, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Cordon, type Container, LifecycleError } from '../../actors/cordon.js';
import type { ErrorCode as LifecycleErrorCode } from '../../errors/index.js';
import { Supervisor } from '../../actors/supervisor.js';
import { EventRecorder } from '../../actors/event-recorder.js';
import { destroyAll } from '../fixtures/containers.js';
import { JournalStore } from '../../events/journal.js';
import type { CordonEvent } from '../../events/schema.js';
import { ConcurrencyError, type EventStore } from '../../events/store.js';
import { type Bundle, REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { alive, cordon, removeIoDir, startCordon, waitFor } from '../cli/helpers.js';
import { openJournal } from '../../actors/event-recorder.js';

const roots: string[] = [];
const bundles: Bundle[] = [];
const children: ChildProcess[] = [];
const nul = openSync('/dev/null', 'r+');
const STDIO = [nul, nul, nul] as const;

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  // Whatever a failed test left: force-delete every container of every root.
  for (const root of roots) {
    await destroyAll(root);
    rmSync(root, { recursive: true, force: true });
  }
  for (const b of bundles) b.cleanup();
  closeSync(nul);
  removeIoDir();
});

function freshRoot(name: string): string {
  const r = mkdtempSync(`/tmp/cordon-it-sup-${name}-`);
  roots.push(r);
  return r;
}

function bundle(args: string[]): Bundle {
  const b = makeBundle({ spec: (s) => void (s.process.args = args) });
  bundles.push(b);
  return b;
}

/** The journal's records, parsed straight from the file (`CRC32 JSON` lines). */
function journal(root: string): CordonEvent[] {
  const p = join(root, 'events.journal');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l.slice(9)) as CordonEvent);
}

/** The LifecycleError code a promise (or a throwing call) fails with. */
async function codeOf(f: () => unknown): Promise<LifecycleErrorCode | string> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(LifecycleError);
    return (e as LifecycleError).code;
  }
  return 'no error';
}

/** The promise's value, or a failure naming `what` after `ms`. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** seq 1..n host-wide without gaps, and containerSeq 1..k per container. */
function expectGapFree(events: CordonEvent[]): void {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const per = new Map<string, number[]>();
  for (const e of events) per.set(e.containerId, [...(per.get(e.containerId) ?? []), e.containerSeq]);
  for (const [, seqs] of per) expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

describe('library: one container through Cordon', () => {
  it('create, start, exit events with the host pid and exit code, live to a subscriber opened before create, replayable', async () => {
    const root = freshRoot('lib');
    const b = bundle(['sh', '-c', 'exit 7']);
    const cordonLib = await Cordon.open({ root });
    const seen: CordonEvent[] = [];
    const sub = cordonLib.events$().subscribe((e) => seen.push(e));
    let c: Container | undefined;
    try {
      c = await cordonLib.create('lib-1', { bundle: b.dir, stdio: STDIO });
      const st = await c.state();
      expect(st.machine).toBe('created');
      expect(st.oci.status).toBe('created');
      const pid = st.oci.pid;
      expect(pid).toBeGreaterThan(1);
      // Live: create arrived as it was appended, before anything else happened.
      expect(seen.map((e) => e.action)).toEqual(['create']);
      await c.start();
      expect(seen.map((e) => e.action)).toEqual(['create', 'start']);
      const exit = await c.wait(20_000);
      // The exit event reached the subscriber no later than wait() resolved.
      const atWait = seen.map((e) => e.action);
      expect(atWait).toEqual(['create', 'start', 'exit']);
      expect(exit).toEqual({ exitCode: 7, signal: null, oomKilled: false, unknown: false });
      expect((await c.state()).machine).toBe('stopped');

      for (const e of seen) expect(e.attributes.pid, e.action).toBe(pid);
      expect(seen.map((e) => [e.seq, e.containerSeq, e.action, e.from, e.to])).toEqual([
        [1, 1, 'create', 'creating', 'created'],
        [2, 2, 'start', 'created', 'running'],
        [3, 3, 'exit', 'running', 'stopped'],
      ]);
      expect(seen[2].attributes).toMatchObject({ exitCode: 7, signal: null, oomKilled: false });
      expect(seen.every((e) => e.containerId === 'lib-1')).toBe(true);
      expect(seen[0].timeNano <= seen[1].timeNano && seen[1].timeNano <= seen[2].timeNano).toBe(true);

      // Replay from the log: the same three, and the stream completes.
      const replayed = await firstValueFrom(cordonLib.events$({ sinceSeq: 1, follow: false }).pipe(toArray()));
      expect(replayed).toEqual(seen);
      expect(journal(root)).toEqual(seen);
      const own = await firstValueFrom(c.events$({ sinceSeq: 2, follow: false }).pipe(toArray()));
      expect(own.map((e) => e.action)).toEqual(['start', 'exit']);

      await c.destroy();
      expect(existsSync(join(root, 'lib-1'))).toBe(false);
      expect(seen.map((e) => e.action)).toEqual(['create', 'start', 'exit', 'destroy']);
      expectGapFree(journal(root));
    } finally {
      sub.unsubscribe();
      await c?.destroy({ force: true }).catch(() => {});
      await cordonLib.close();
    }
  });
});

describe('library: illegal commands are LifecycleErrors that change nothing', () => {
  it('start twice, pause a stopped one, destroy a running one, an existing id, a bad id, a bad config, an unknown id', async () => {
    const root = freshRoot('illegal');
    const sleeper = bundle(['sleep', '1000']);
    const quick = bundle(['true']);
    const bad = makeBundle({ spec: (s) => void (s.process.cwd = 'relative/dir') });
    bundles.push(bad);
    const lib = await Cordon.open({ root });
    const made: Container[] = [];
    try {
      const run = await lib.create('ill-run', { bundle: sleeper.dir, stdio: STDIO });
      made.push(run);
      await run.start();
      const done = await lib.create('ill-done', { bundle: quick.dir, stdio: STDIO });
      made.push(done);
      expect(await done.run()).toMatchObject({ exitCode: 0 });

      const snapshotNow = async () => ({
        log: readFileSync(join(root, 'events.journal')),
        dirs: readdirSync(root).sort(),
        ids: lib.list(),
        states: await Promise.all(lib.list().map(async (id) => (await lib.load(id).state()).machine)),
      });
      const before = await snapshotNow();
      expect(before.states).toEqual(['stopped', 'running']);

      expect(await codeOf(() => run.start())).toBe('ContainerNotStopped');
      expect(await codeOf(() => done.pause())).toBe('ContainerNotRunning');
      expect(await codeOf(() => run.destroy())).toBe('ContainerNotStopped');
      expect(await codeOf(() => lib.create('ill-run', { bundle: sleeper.dir, stdio: STDIO }))).toBe('IdInUse');
      expect(await codeOf(() => lib.create('ill-done', { bundle: quick.dir, stdio: STDIO }))).toBe('IdInUse');
      expect(await codeOf(() => lib.create('bad/id', { bundle: quick.dir, stdio: STDIO }))).toBe('InvalidIdFormat');
      expect(await codeOf(() => lib.create('..', { bundle: quick.dir, stdio: STDIO }))).toBe('InvalidIdFormat');
      expect(await codeOf(() => lib.create('ill-bad', { bundle: bad.dir, stdio: STDIO }))).toBe('ConfigInvalid');
      expect(await codeOf(() => lib.load('no-such-container'))).toBe('ContainerNotExists');

      const after = await snapshotNow();
      expect(after.log.equals(before.log)).toBe(true);
      expect(after.dirs).toEqual(before.dirs);
      expect(after.ids).toEqual(before.ids);
      expect(after.states).toEqual(before.states);
      expect((await run.state()).oci.status).toBe('running');

      await run.destroy({ force: true });
      await done.destroy();
      expect(lib.list()).toEqual([]);
      expectGapFree(journal(root));
    } finally {
      for (const c of made) await c.destroy({ force: true }).catch(() => {});
      await lib.close();
    }
  });
});

describe('recovery after the supervisor process is SIGKILLed', () => {
  it('paused stays paused, live ones are re-adopted, one killed while down gets an unknown exit, an adopted one is watched', async () => {
    const root = freshRoot('crash');
    const b = bundle(['sleep', '1000']);
    const child = spawn(process.execPath, [join(REPO_ROOT, 'test/fixtures/supervisor-child.mjs'), root, b.dir, '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let lib: Cordon | undefined;
    try {
      await waitFor('the supervisor process to be ready', () => {
        if (child.exitCode !== null) throw new Error(`supervisor process exited ${child.exitCode}: ${err}`);
        return out.includes('\nready\n');
      }, 30_000);
      const made = JSON.parse(out.split('\n')[0]) as Array<{ id: string; pid: number }>;
      expect(made).toHaveLength(4);
      const [paused, killedWhileDown, adoptedA, adoptedB] = made;
      for (const m of made) expect(alive(m.pid), m.id).toBe(true);

      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      // While no supervisor runs: one container dies.
      process.kill(killedWhileDown.pid, 'SIGKILL');
      await waitFor('the container to die', () => !alive(killedWhileDown.pid), 5000);
      const seqBefore = journal(root).length;

      lib = await Cordon.open({ root });
      const r = lib.recovery;
      expect([...r.adopted].sort()).toEqual([paused.id, adoptedA.id, adoptedB.id].sort());
      expect(r.exitedWhileDown).toEqual([killedWhileDown.id]);
      expect(r.unchanged).toEqual([]);
      expect(lib.list()).toEqual(made.map((m) => m.id).sort());

      // The paused one: paused in the machine and in the kernel (its freezer is still FROZEN).
      const ps = await lib.load(paused.id).state();
      expect([ps.machine, ps.oci.status]).toEqual(['paused', 'paused']);
      const rec = JSON.parse(readFileSync(join(root, paused.id, 'state.json'), 'utf8')) as { cgroupPaths: Record<string, string> };
      if (rec.cgroupPaths.freezer) expect(readFileSync(join(rec.cgroupPaths.freezer, 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
      else expect(readFileSync(join(rec.cgroupPaths.unified, 'cgroup.freeze'), 'utf8').trim()).toBe('1');
      for (const m of [adoptedA, adoptedB]) {
        const s = await lib.load(m.id).state();
        expect([s.machine, s.oci.status, s.oci.pid], m.id).toEqual(['running', 'running', m.pid]);
      }

      // The one that died while nobody watched: stopped, and the fact is an event with unknown: true.
      expect((await lib.load(killedWhileDown.id).state()).machine).toBe('stopped');
      const recovered = journal(root).slice(seqBefore);
      expect(recovered.map((e) => [e.containerId, e.action, e.from, e.to])).toEqual([[killedWhileDown.id, 'exit', 'running', 'stopped']]);
      expect(recovered[0].attributes).toMatchObject({ unknown: true, exitCode: null, signal: null });
      expect(await lib.load(killedWhileDown.id).wait(1000)).toMatchObject({ unknown: true });

      // An adopted container killed from the host: its pidfd watcher notices.
      process.kill(adoptedB.pid, 'SIGKILL');
      const ex = await lib.load(adoptedB.id).wait(10_000);
      expect(ex).toMatchObject({ unknown: true, exitCode: null });
      expect((await lib.load(adoptedB.id).state()).machine).toBe('stopped');
      const last = journal(root).filter((e) => e.containerId === adoptedB.id).at(-1);
      expect(last).toMatchObject({ action: 'exit', from: 'running', to: 'stopped', attributes: { unknown: true } });
      // The other adopted one is untouched.
      expect((await lib.load(adoptedA.id).state()).machine).toBe('running');

      const cgroupDirs = made.flatMap((m) => Object.values((JSON.parse(readFileSync(join(root, m.id, 'state.json'), 'utf8')) as { cgroupPaths: Record<string, string> }).cgroupPaths));
      for (const m of made) await lib.load(m.id).destroy({ force: true });
      for (const m of made) expect(alive(m.pid), m.id).toBe(false);
      expect(readdirSync(root)).toEqual(['events.journal']);
      expect(cgroupDirs.filter((d) => existsSync(d))).toEqual([]);
      const all = journal(root);
      expectGapFree(all);
      for (const m of made) expect(all.filter((e) => e.containerId === m.id).at(-1)?.action, m.id).toBe('destroy');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (lib) {
        for (const id of lib.list()) await lib.load(id).destroy({ force: true }).catch(() => {});
        await lib.close();
      }
    }
  });
});

describe('closing a Cordon', () => {
  it('close() lets the process end while its containers keep running; a later open re-adopts them', async () => {
    const root = freshRoot('close');
    const b = bundle(['sleep', '1000']);
    const child = spawn(process.execPath, [join(REPO_ROOT, 'test/fixtures/supervisor-child.mjs'), root, b.dir, '2', 'close'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await within(20_000, new Promise<number | null>((r) => child.once('exit', (c) => r(c))), 'the process to end after close()');
    expect([code, err]).toEqual([0, '']);
    const made = JSON.parse(out.split('\n')[0]) as Array<{ id: string; pid: number }>;
    for (const m of made) expect(alive(m.pid), m.id).toBe(true);
    const lib = await Cordon.open({ root });
    try {
      expect([...lib.recovery.adopted].sort()).toEqual(made.map((m) => m.id).sort());
      expect(await Promise.all(made.map(async (m) => (await lib.load(m.id).state()).machine))).toEqual(['paused', 'running']);
      for (const m of made) await lib.load(m.id).destroy({ force: true });
      for (const m of made) expect(alive(m.pid), m.id).toBe(false);
      expect(readdirSync(root)).toEqual(['events.journal']);
      expectGapFree(journal(root));
    } finally {
      for (const id of lib.list()) await lib.load(id).destroy({ force: true }).catch(() => {});
      await lib.close();
    }
  });
});

describe('cordon daemon next to CLI verbs', () => {
  it('records the exit after the CLI\'s kill; SIGTERM stops it promptly with 0 and containers survive', async () => {
    const root = freshRoot('daemon');
    const b = bundle(['sleep', '1000']);
    const daemon = startCordon(root, ['daemon'], { timeoutMs: 60_000 });
    children.push(daemon.child);
    try {
      await waitFor('the daemon to start', () => readFileSync(daemon.stderrFile, 'utf8').includes('supervising'), 15_000);
      for (const id of ['d-keep', 'd-kill']) {
        const r = await cordon(root, ['run', '-d', '-b', b.dir, id]);
        expect(r.code, r.stderr).toBe(0);
      }
      const k = await cordon(root, ['kill', 'd-kill', 'KILL']);
      expect(k.code, k.stderr).toBe(0);
      const events = async () => {
        const r = await cordon(root, ['events', '--no-follow', '--format', 'json']);
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as CordonEvent);
      };
      const log = await waitFor('the daemon to record the exit', async () => {
        const es = await events();
        return es.some((e) => e.containerId === 'd-kill' && e.action === 'exit') ? es : undefined;
      }, 10_000);
      expect(log.filter((e) => e.containerId === 'd-kill').map((e) => e.action)).toEqual(['create', 'start', 'kill', 'exit']);
      const kill = log.find((e) => e.containerId === 'd-kill' && e.action === 'kill') as CordonEvent;
      const exit = log.find((e) => e.containerId === 'd-kill' && e.action === 'exit') as CordonEvent;
      expect(exit.seq).toBeGreaterThan(kill.seq);
      expect(kill.attributes).toEqual({ signal: 9 });
      // Appended by the daemon: `run -d` next to it created the container through its control socket, so the
      // daemon is the parent and knows how it ended (the CLI never records exits of containers it does not follow).
      expect(exit.attributes).toMatchObject({ exitCode: null, signal: 9, oomKilled: false });
      expect([exit.from, exit.to]).toEqual(['running', 'stopped']);
      expectGapFree(log);

      const keepPid = JSON.parse((await cordon(root, ['state', 'd-keep'])).stdout).pid as number;
      daemon.child.kill('SIGTERM');
      const res = await within(3000, daemon.done, 'the daemon to stop after SIGTERM');
      expect([res.code, res.signal]).toEqual([0, null]);
      expect(alive(keepPid)).toBe(true);
      expect(JSON.parse((await cordon(root, ['state', 'd-keep'])).stdout)).toMatchObject({ status: 'running', pid: keepPid });
      // Nothing recorded for the survivor after the daemon stopped.
      expect((await events()).filter((e) => e.containerId === 'd-keep').map((e) => e.action)).toEqual(['create', 'start']);
    } finally {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
      for (const id of ['d-keep', 'd-kill']) await cordon(root, ['delete', '--force', id]);
    }
    expect(readdirSync(root)).toEqual(['events.journal']);
  });

  it('a short-lived container run -d next to the daemon is its child: the exit and its code are recorded', async () => {
    const root = freshRoot('daemon-quick');
    const b = bundle(['true']);
    const daemon = startCordon(root, ['daemon'], { timeoutMs: 60_000 });
    children.push(daemon.child);
    try {
      await waitFor('the daemon to start', () => readFileSync(daemon.stderrFile, 'utf8').includes('supervising'), 15_000);
      expect((await cordon(root, ['run', '-d', '-b', b.dir, 'q-1'])).code).toBe(0);
      const es = await waitFor('the exit', () => {
        const all = journal(root);
        return all.some((e) => e.action === 'exit' || e.action === 'error') ? all : undefined;
      }, 10_000);
      expect(es.map((e) => e.action)).toEqual(['create', 'start', 'exit']);
      expect(es[2].attributes).toMatchObject({ exitCode: 0, signal: null });
      daemon.child.kill('SIGTERM');
      expect((await within(3000, daemon.done, 'the daemon to stop after SIGTERM')).code).toBe(0);
    } finally {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
      await cordon(root, ['delete', '--force', 'q-1']);
    }
  });
});

/** True once process `pid` has `file` open and an inotify watch (JournalStore.subscribe's file watch). */
function watching(pid: number, file: string): boolean {
  try {
    let open = false;
    let inotify = false;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link === file) open = true;
      if (link === 'anon_inode:inotify' && readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').includes('inotify wd:')) inotify = true;
    }
    return open && inotify;
  } catch {
    return false;
  }
}

describe('cordon events (the host lifecycle stream)', () => {
  const FIELDS = ['v', 'seq', 'containerSeq', 'id', 'time', 'timeNano', 'host', 'type', 'action', 'containerId', 'from', 'to', 'attributes'];

  it('json fields, filters (OR within a key, AND across), --since-seq, --until, --no-follow, human lines, following', async () => {
    const root = freshRoot('events');
    const file = join(root, 'events.journal');
    const store = openJournal(file);
    const rec = new EventRecorder(store, 'host-t');
    try {
      await rec.record('ea', 'create', { pid: 101, bundle: '/b' });
      await rec.record('eb', 'create', { pid: 102, bundle: '/b' });
      await rec.record('ea', 'start', { pid: 101 });
      await rec.record('ec', 'create', { pid: 103, bundle: '/b' });
      await rec.record('eb', 'start', { pid: 102 });
      await rec.record('ea', 'kill', { signal: 9 });
      await rec.record('ea', 'exit', { pid: 101, exitCode: null, signal: 9, oomKilled: false });
      await new Promise((r) => setTimeout(r, 30));
      const cut = new Date();
      await new Promise((r) => setTimeout(r, 30));
      await rec.record('eb', 'pause', {});
      await rec.record('ec', 'start', { pid: 103 });
      const stored = await store.read(1);
      expect(stored).toHaveLength(9);

      const json = async (...args: string[]) => {
        const r = await cordon(root, ['events', '--format', 'json', ...args]);
        expect([r.code, r.stderr]).toEqual([0, '']);
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as CordonEvent);
      };

      const all = await json('--no-follow');
      expect(all).toEqual(stored);
      for (const e of all) {
        const transition = e.action !== 'kill';
        expect(Object.keys(e).sort(), e.action).toEqual((transition ? FIELDS : FIELDS.filter((f) => f !== 'from' && f !== 'to')).sort());
      }
      expect(all[0]).toMatchObject({ v: 1, seq: 1, containerSeq: 1, host: 'host-t', type: 'container', action: 'create', containerId: 'ea', from: 'creating', to: 'created', attributes: { pid: 101, bundle: '/b' } });
      expect(all[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(all[0].time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      expect(Math.abs(all[0].timeNano / 1e6 - Date.parse(all[0].time))).toBeLessThan(1);

      const ids = (es: CordonEvent[]) => es.map((e) => e.seq);
      expect(ids(await json('--no-follow', '--filter', 'container=ea', '--filter', 'container=ec'))).toEqual([1, 3, 4, 6, 7, 9]);
      expect(ids(await json('--no-follow', '--filter', 'container=ea', '--filter', 'action=start'))).toEqual([3]);
      expect(ids(await json('--no-follow', '--filter', 'action=start', '--filter', 'action=create', '--filter', 'container=eb'))).toEqual([2, 5]);
      expect(ids(await json('--no-follow', '--since-seq', '6'))).toEqual([6, 7, 8, 9]);
      expect(ids(await json('--no-follow', '--since-seq', '4', '--filter', 'container=ec'))).toEqual([4, 9]);
      // --until (no --no-follow): the stored events up to it, then the command exits by itself.
      expect(ids(await json('--until', cut.toISOString()))).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(ids(await json('--no-follow', '--since', cut.toISOString()))).toEqual([8, 9]);

      const human = await cordon(root, ['events', '--no-follow']);
      expect(human.code).toBe(0);
      const lines = human.stdout.split('\n').filter(Boolean);
      expect(lines).toHaveLength(9);
      expect(lines[0]).toBe(`${stored[0].time} #1 container create ea creating -> created (pid=101, bundle=/b)`);
      expect(lines[5]).toBe(`${stored[5].time} #6 container kill ea (signal=9)`);
      expect(lines[7]).toBe(`${stored[7].time} #8 container pause eb running -> paused`);

      const bad = await cordon(root, ['events', '--no-follow', '--filter', 'colour=red']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^cordon: BadRequest: --filter: expected container=ID or action=ACTION/);

      // Following: only what is appended after it started, filtered; SIGINT ends it with 0.
      const follower = startCordon(root, ['events', '--format', 'json', '--filter', 'container=ed'], { timeoutMs: 30_000 });
      children.push(follower.child);
      await waitFor('the follower to watch the journal', () => watching(follower.child.pid as number, file), 10_000);
      await rec.record('ee', 'create', { pid: 105 });
      const ed = await rec.record('ed', 'create', { pid: 104 });
      const got = await waitFor('the live event', () => {
        const ls = follower.stdoutNow().split('\n').filter(Boolean);
        return ls.length ? ls : undefined;
      }, 10_000);
      // Nothing else arrives (the other container's event was filtered out).
      await new Promise((r) => setTimeout(r, 200));
      expect(follower.stdoutNow().split('\n').filter(Boolean)).toHaveLength(1);
      expect(got.map((l) => JSON.parse(l) as CordonEvent)).toEqual([ed]);
      follower.child.kill('SIGINT');
      const fr = await follower.done;
      expect([fr.code, fr.signal, fr.stderr]).toEqual([0, null, '']);
      expect(fr.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    } finally {
      rec.close();
      await store.close();
    }
  });
});

describe('two writers for one container', () => {
  it('conflict on the expected container sequence; the loser retries; the log stays gap-free', async () => {
    const root = freshRoot('conflict');
    const file = join(root, 'events.journal');
    const conflicts: string[] = [];
    const counting = (s: JournalStore, name: string): EventStore => {
      const append = s.append.bind(s);
      s.append = async (...a) => {
        try {
          return await append(...a);
        } catch (e) {
          if (e instanceof ConcurrencyError) conflicts.push(`${name}: expected ${e.expected}, log ${e.actual}`);
          throw e;
        }
      };
      return s;
    };
    const sa = openJournal(file);
    const sb = openJournal(file);
    const a = new EventRecorder(counting(sa, 'A'), 'sup-a');
    const b = new EventRecorder(counting(sb, 'B'), 'sup-b');
    try {
      await a.record('w1', 'create', { pid: 1 });
      await a.record('w1', 'start', { pid: 1 });
      // B learns the state (it loads the log) before both write.
      expect((await b.stateOf('w1')).value).toBe('running');
      const [ka, ub] = await Promise.all([a.record('w1', 'kill', { signal: 15 }), b.record('w1', 'update', { resources: {} })]);
      expect(conflicts.length).toBeGreaterThanOrEqual(1);
      expect(conflicts[0]).toMatch(/expected 2, log 3$/);
      expect(new Set([ka.containerSeq, ub.containerSeq])).toEqual(new Set([3, 4]));
      // Then the same on another pair of facts, B first: a pause and a kill, both legal in `running`.
      const [pb, k2] = await Promise.all([b.record('w1', 'pause', {}), a.record('w1', 'kill', { signal: 9 })]);
      expect(conflicts.length).toBeGreaterThanOrEqual(2);
      expect([pb.containerSeq, k2.containerSeq].sort()).toEqual([5, 6]);
      // A retry re-checks the machine: after B's pause, A may not pause again.
      await expect(a.record('w1', 'pause', {})).rejects.toMatchObject({ code: 'ContainerPaused' });
      const log = journal(root);
      expect(log).toHaveLength(6);
      expectGapFree(log);
      expect(log.map((e) => e.host)).toContain('sup-b');
      const reopened = openJournal(file);
      expect(await reopened.read(1)).toEqual(log);
      await reopened.close();
    } finally {
      a.close();
      b.close();
      await sa.close();
      await sb.close();
    }
  });
});

describe('torn journal tail', () => {
  it('a half-written last line is cut off when a Cordon opens the root; earlier events are intact and numbering continues', async () => {
    const root = freshRoot('torn');
    const file = join(root, 'events.journal');
    const store = openJournal(file);
    const rec = new EventRecorder(store, 'host-t');
    for (const [id, action, attrs] of [['t1', 'create', { pid: 1 }], ['t1', 'exit', { exitCode: 0, signal: null }], ['t1', 'destroy', {}], ['t2', 'create', { pid: 2 }], ['t2', 'destroy', {}]] as const) {
      await rec.record(id, action, attrs);
    }
    rec.close();
    await store.close();
    const good = readFileSync(file);
    const events = journal(root);
    const half = '0badc0de {"v":1,"seq":6,"containerSeq":1,"id":"1c4f';
    appendFileSync(file, half);

    const lib = await Supervisor.start({ root });
    try {
      const js = lib.store as JournalStore;
      expect(js.openReport).toEqual({ records: 5, truncatedBytes: half.length });
      expect(readFileSync(file).equals(good)).toBe(true);
      expect(await firstValueFrom(lib.events$({ sinceSeq: 1, follow: false }).pipe(toArray()))).toEqual(events);
      expect(lib.ids()).toEqual([]);
      const next = await lib.containers.recorder.record('t3', 'create', { pid: 3 });
      expect([next.seq, next.containerSeq]).toEqual([6, 1]);
      expectGapFree(journal(root));
    } finally {
      await lib.stop();
    }
  });
});
