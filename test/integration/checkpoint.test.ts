/**
 * checkpoint and restore with real CRIU and real containers, through ContainerHost (the path every door
 * takes): a busybox counter dumped and restored counts on from where it stopped (same tree, pid 1 inside, a
 * new host pid, its cgroups made again); --leave-running; a restore under a new id; a paused container;
 * bad input refused with a clear error and nothing left behind. The containers get pipes for their stdio:
 * CRIU cannot dump a host file outside the container's mounts (runc's tests use pipes too).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ociStateOf, listStates } from '../../actors/queries.js';
import { LifecycleError } from '../../errors/index.js';
import { JournalStore } from '../../events/journal.js';
import { cgroupDirsOf, pidsIn } from '../fixtures/invariants.js';
import { until } from '../fixtures/wait.js';
import { type Bundle, Harness } from './harness.js';

const h = new Harness('criu');
const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done';
const T = 60_000;
let plumbing: ChildProcess;
let plumbers: number[] = [];
let stdio: [number, number, number];
const scratch = mkdtempSync('/tmp/cordon-it-criu-images-');

/**
 * Real pipes for the containers' stdio (Node's own child pipes are unix socketpairs, whose peer CRIU cannot
 * find outside the container): `sleep | sleep` holds one pipe; its ends are opened again through /proc.
 */
async function realPipe(): Promise<{ read: number; write: number; holder: ChildProcess; pids: number[] }> {
  const holder = spawn('sh', ['-c', 'sleep 100000 | sleep 100000'], { stdio: 'ignore' });
  const kids = await until(() => {
    try {
      const k = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      return k.length === 2 && k.every((p) => readlinkSync(`/proc/${p}/exe`).endsWith('busybox') || readlinkSync(`/proc/${p}/exe`).includes('sleep')) ? k : undefined;
    } catch {
      return undefined;
    }
  }, 5_000, 'sleep | sleep');
  const writer = kids.find((p) => readlinkSync(`/proc/${p}/fd/1`).startsWith('pipe:')) as number;
  const reader = kids.find((p) => readlinkSync(`/proc/${p}/fd/0`).startsWith('pipe:')) as number;
  return { write: openSync(`/proc/${writer}/fd/1`, 'w'), read: openSync(`/proc/${reader}/fd/0`, 'r'), holder, pids: kids };
}

beforeAll(async () => {
  const v = spawnSync('criu', ['--version'], { encoding: 'utf8' });
  // Never skipped quietly: without CRIU these tests fail and say why.
  if (v.status !== 0) throw new Error(`criu is not on PATH (${v.error?.message ?? v.stderr}): run bash scripts/criu.sh`);
  const probe = criuProbe();
  if (probe) throw new Error(probe);
  // Pipes for the containers' stdio: a sleeper that neither reads nor writes holds the other ends.
  const p = await realPipe();
  plumbing = p.holder;
  plumbers = p.pids;
  stdio = [p.read, p.write, p.write];
});

afterAll(async () => {
  await h.cleanup();
  plumbing?.kill('SIGKILL');
  for (const pid of plumbers) process.kill(pid, 'SIGKILL'); // the two sleeps of the pipe, by pid
  for (const fd of new Set(stdio ?? [])) closeSync(fd);
  // A CRIU this process started that still hangs (a failed test) goes too, by its pid.
  for (const pid of childCriu()) process.kill(pid, 'SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * Can CRIU dump a plain process here (as kernel/criu runs it: CRIU_FAULT=130, no hardware breakpoints, which
 * never fire on some virtual machines)? Undefined when it can; otherwise why not.
 */
function criuProbe(): string | undefined {
  const dir = mkdtempSync('/tmp/cordon-it-criu-probe-');
  const victim = spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' });
  try {
    const r = spawnSync('criu', ['dump', '-t', String(victim.pid), '-D', dir, '--shell-job', '-o', 'dump.log', '-v4'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, CRIU_FAULT: '130' } });
    if (r.status === 0) return undefined;
    let tail = '';
    try {
      tail = readFileSync(join(dir, 'dump.log'), 'utf8').trim().split('\n').slice(-3).join('\n');
    } catch {
      tail = '(no dump.log)';
    }
    const how = r.status === null ? `did not finish within 20 s (${r.signal ?? 'killed'})` : `failed (exit ${r.status})`;
    return `CRIU cannot checkpoint on this machine: \`criu dump\` of a plain sleep process ${how}; the tail of its log:\n${tail}`;
  } finally {
    victim.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function childCriu(): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('criu')) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** A counter container with its own copy of the rootfs (it writes /tmp/count there), started. */
async function counter(): Promise<{ id: string; bundle: Bundle; count: () => number }> {
  const bundle = h.bundle((s) => {
    s.process.args = ['sh', '-c', COUNTER];
    s.root = { path: 'rootfs', readonly: false };
  });
  const id = h.nextId();
  const c = await h.containers();
  await c.create(id, { bundle: bundle.dir, stdio });
  await c.start(id);
  const file = join(bundle.rootfs, 'tmp', 'count');
  const count = () => {
    try {
      return Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  await until(() => (count() >= 3 ? true : undefined), 10_000, 'the counter to count to 3');
  return { id, bundle, count };
}

const images = (name: string) => join(scratch, name);
const nspid = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)?.[1].trim().split(/\s+/).map(Number) ?? [];

async function facts(id: string, action: string): Promise<Array<Record<string, unknown>>> {
  const c = await h.containers();
  if (c.store instanceof JournalStore) c.store.refresh();
  return (await c.store.read(1)).filter((e) => e.containerId === id && e.action === action).map((e) => e.attributes);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof LifecycleError ? e.code : `not a LifecycleError: ${String(e)}`;
  }
  return 'no error';
}

describe('checkpoint and restore (real CRIU)', () => {
  it('a checkpointed counter is gone, as runc says; restored, the same tree counts on from where it stopped', async () => {
    const { id, count } = await counter();
    const c = await h.containers();
    const oldPid = c.state.require(id).pid;
    const img = images('counter');
    const r = await c.checkpoint(id, { imagePath: img });
    expect(r.imagePath).toBe(img);
    expect(r.imagesBytes).toBeGreaterThan(0);
    expect(existsSync(join(img, 'inventory.img'))).toBe(true);
    expect(c.machineState(id)).toBe('checkpointed');
    // The process and its cgroups are gone; the state dir stays (the config of create, where the images are).
    expect(existsSync(`/proc/${oldPid}`)).toBe(false);
    expect(cgroupDirsOf(id)).toEqual([]);
    expect(existsSync(join(h.root, id, 'state.json'))).toBe(true);
    // runc: "container does not exist" after a checkpoint; list does not show it.
    expect(() => ociStateOf(h.state, id)).toThrow(/does not exist.*checkpointed/);
    expect(listStates(h.state).map((s) => s.id)).not.toContain(id);
    const stopped = count();
    const [cp] = await facts(id, 'checkpoint');
    expect(cp).toMatchObject({ imagePath: img, leaveRunning: false, pid: oldPid });
    expect(cp.imagesBytes).toBe(r.imagesBytes);
    expect(typeof cp.durationMs).toBe('number');

    const rs = await c.restore(id, { stdio });
    expect(c.machineState(id)).toBe('running');
    expect(rs.pid).not.toBe(oldPid);
    expect(ociStateOf(h.state, id)).toMatchObject({ status: 'running', pid: rs.pid });
    // The same tree: the shell is pid 1 in its namespace, in the cgroups made again.
    expect(nspid(rs.pid).at(-1)).toBe(1);
    expect(pidsIn(cgroupDirsOf(id))).toContain(rs.pid);
    const next = await until(() => (count() > stopped ? count() : undefined), 10_000, 'the restored counter to count');
    expect(next).toBeLessThanOrEqual(stopped + 3); // on from where it stopped, not from 1
    const [rf] = await facts(id, 'restore');
    expect(rf).toMatchObject({ pid: rs.pid, imagePath: img });
    await c.destroy(id, { force: true });
  }, T);

  it('--leave-running: the images are written and the container runs on', async () => {
    const { id, count } = await counter();
    const c = await h.containers();
    const pid = c.state.require(id).pid;
    const r = await c.checkpoint(id, { imagePath: images('leave'), leaveRunning: true });
    expect(r.leaveRunning).toBe(true);
    expect(c.machineState(id)).toBe('running');
    expect(ociStateOf(h.state, id)).toMatchObject({ status: 'running', pid });
    const at = count();
    await until(() => (count() > at ? true : undefined), 5_000, 'the counter to go on');
    await c.destroy(id, { force: true });
  }, T);

  it('restore under a new id with the bundle (the old one deleted, as runc has it gone)', async () => {
    const { id, bundle, count } = await counter();
    const c = await h.containers();
    const img = images('newid');
    await c.checkpoint(id, { imagePath: img });
    await c.destroy(id);
    const stopped = count();
    const id2 = h.nextId();
    const rs = await c.restore(id2, { imagePath: img, bundle: bundle.dir, stdio });
    expect(c.machineState(id2)).toBe('running');
    expect(ociStateOf(h.state, id2)).toMatchObject({ status: 'running', pid: rs.pid, bundle: bundle.dir });
    await until(() => (count() > stopped ? true : undefined), 10_000, 'the counter restored under a new id to count');
    expect(await facts(id2, 'restore')).toEqual([expect.objectContaining({ fresh: true, pid: rs.pid })]);
    await c.destroy(id2, { force: true });
  }, T);

  it('a paused container can be checkpointed (as runc) and restored', async () => {
    const { id, count } = await counter();
    const c = await h.containers();
    await c.pause(id);
    await c.checkpoint(id, { imagePath: images('paused') });
    expect(c.machineState(id)).toBe('checkpointed');
    const stopped = count();
    await c.restore(id, { stdio });
    expect(c.machineState(id)).toBe(ociStateOf(h.state, id).status);
    if (c.machineState(id) === 'paused') await c.resume(id);
    await until(() => (count() > stopped ? true : undefined), 10_000, 'the restored counter to count');
    await c.destroy(id, { force: true });
  }, T);

  it('bad input: a clear error and nothing left behind', async () => {
    const c = await h.containers();
    // A created container: the machine refuses, no image dir is made.
    const b = h.bundle((s) => void (s.process.args = ['sleep', '100']));
    const created = h.nextId();
    await c.create(created, { bundle: b.dir, stdio });
    expect(await codeOf(c.checkpoint(created, { imagePath: images('created') }))).toBe('ContainerNotRunning');
    expect(existsSync(images('created'))).toBe(false);
    // A stopped one: the same.
    await c.kill(created, 9);
    await c.waitFor(created, ['stopped'], 10_000);
    expect(await codeOf(c.checkpoint(created, { imagePath: images('stopped') }))).toBe('ContainerNotRunning');
    await c.destroy(created);

    const { id, bundle } = await counter();
    // Restore onto an id that runs: refused by the machine.
    expect(await codeOf(c.restore(id, { imagePath: images('none') }))).toBe('ContainerNotStopped');
    // A flag value CRIU does not know: refused before anything happens.
    expect(await codeOf(c.checkpoint(id, { imagePath: images('bad'), manageCgroupsMode: 'sometimes' }))).toBe('BadRequest');
    expect(await codeOf(c.checkpoint(id, { imagePath: images('bad'), emptyNs: ['pid'] }))).toBe('BadRequest');
    expect(c.machineState(id)).toBe('running');
    // Restore under a new id from a missing image directory: nothing of it stays.
    const fresh = h.nextId();
    expect(await codeOf(c.restore(fresh, { imagePath: images('missing'), bundle: bundle.dir, stdio }))).toBe('ConfigInvalid');
    expect(existsSync(join(h.root, fresh))).toBe(false);
    expect(cgroupDirsOf(fresh)).toEqual([]);

    const img = images('damaged');
    await c.checkpoint(id, { imagePath: img });
    // Missing images: still checkpointed, no cgroups made, an error event.
    expect(await codeOf(c.restore(id, { imagePath: images('missing'), stdio }))).toBe('ConfigInvalid');
    expect(c.machineState(id)).toBe('checkpointed');
    expect(cgroupDirsOf(id)).toEqual([]);
    // Damaged images (a truncated page map): CRIU fails, the container stays checkpointed, its images intact.
    const pagemap = readdirSync(img).find((f) => f.startsWith('pagemap-'));
    expect(pagemap).toBeDefined();
    truncateSync(join(img, pagemap as string), 3);
    const before = readdirSync(img).sort();
    const err = await c.restore(id, { stdio }).then(() => undefined, (e: unknown) => e as LifecycleError);
    expect(err?.message).toMatch(/restore\.log/);
    expect(c.machineState(id)).toBe('checkpointed');
    expect(cgroupDirsOf(id)).toEqual([]);
    expect(readdirSync(img).sort()).toEqual(expect.arrayContaining(before));
    expect((await facts(id, 'error')).map((e) => e.step)).toEqual(['restore', 'restore']);
    await c.destroy(id);
    expect(existsSync(join(h.root, id))).toBe(false);
  }, T);
});
