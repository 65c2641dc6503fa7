/**
 * Finishing or undoing a verb that was killed midway (its intent left in the container's lock file, its lock
 * free), so that the log and the kernel agree again and the id is never stuck (ARCHITECTURE.md, "Recovery"):
 *
 * - create: completed when its `create` fact is in the log; otherwise undone — the init and every process of
 *   the cgroups it named killed, its network torn down, cgroups, state dir and pid file removed — and the
 *   interruption recorded as an `error` fact;
 * - delete: finished (killed, exit and `destroy` recorded, everything removed);
 * - start: a start whose fact is in the log has its init released; one whose fact is not changed nothing;
 * - pause / resume: the freezer is set to what the log says (the fact decides: an unrecorded change is undone);
 * - kill, exec, update: their facts are recorded before their effects; what is left is the general reconcile;
 * - checkpoint, restore: actors/criu-recovery.ts (a checkpoint without its fact leaves the container running, a
 *   restore without its fact leaves it checkpointed with its images; each interruption is an `error` fact).
 * Every case ends with the general reconcile (an init gone is an exit; an exec whose process is gone, an exec-exit).
 */
import fs from 'node:fs';
import { LifecycleError } from '../errors/index.js';
import { type CgroupManager, O, SIGNALS, isSameProcess, openCgroupManager, openPidfd, pidfdSignal, waitPidfd } from '../kernel/index.js';
import { settledState } from '../machines/container.js';
import type { Intent } from './container-lock.js';
import { teardownNetwork } from './network.js';
import { reconcile } from './reconcile.js';
import { cgroupOf } from './verbs/cgroups.js';
import type { VerbContext } from './verbs/context.js';
import { destroyContainer, removeLeftovers } from './verbs/destroy.js';

const LIVE = new Set(['created', 'running', 'paused']);

/** What recovering an intent did, for reports and warnings. */
export type IntentOutcome = 'completed' | 'undone' | 'finished' | 'agreed' | 'nothing-to-do';

/** Finish or undo the verb a dead process left in `intent`; then reconcile the container with the kernel. */
export async function recoverIntent(ctx: VerbContext, id: string, intent: Intent): Promise<IntentOutcome> {
  const logged = ctx.recorder.logged(id);
  const state = settledState(logged.state.value);
  let outcome: IntentOutcome = 'nothing-to-do';
  switch (intent.verb) {
    case 'create':
      if (LIVE.has(state) && logged.seq > intent.seq) outcome = 'completed';
      else {
        await undoCreate(ctx, id, intent);
        outcome = 'undone';
      }
      break;
    case 'delete':
      if (state !== 'destroyed') await destroyContainer(ctx, id, { force: true });
      else if (ctx.state.exists(id)) await removeLeftovers(ctx, id);
      outcome = 'finished';
      break;
    case 'start':
      if (state === 'running' && releaseInit(ctx, id)) outcome = 'completed';
      break;
    case 'pause':
    case 'resume':
      if (await freezerToLog(ctx, id, state)) outcome = 'agreed';
      break;
    case 'checkpoint':
      outcome = await (await import('./criu-recovery.js')).recoverCheckpoint(ctx, id, intent);
      // CRIU thawed a paused container for the dump: the freezer goes back to what the log says.
      if (outcome === 'undone') await freezerToLog(ctx, id, state);
      break;
    case 'restore':
      outcome = await (await import('./criu-recovery.js')).recoverRestore(ctx, id, intent);
      break;
    default:
      break;
  }
  if (LIVE.has(settledState(ctx.recorder.logged(id).state.value))) {
    await reconcile(ctx, id);
    await recordGoneExecs(ctx, id);
  }
  return outcome;
}

/** Undo a create that never reached its `create` fact: nothing of it may stay. */
async function undoCreate(ctx: VerbContext, id: string, intent: Intent): Promise<void> {
  const rec = ctx.state.read(id);
  const initPid = rec?.pid ?? (typeof intent.initPid === 'number' ? intent.initPid : undefined);
  const initStart = rec?.pidStartTime ?? (typeof intent.initStartTime === 'string' ? intent.initStartTime : undefined);
  const alive = initPid !== undefined && initStart !== undefined && isSameProcess(initPid, BigInt(initStart));
  if (ctx.state.exists(id)) for (const w of await teardownNetwork(ctx.state.dir(id), id, alive ? `/proc/${initPid}/ns/net` : '')) ctx.warn(w);
  const paths = rec?.cgroupPaths ?? (intent.cgroupPaths as Record<string, string> | undefined);
  const created = rec?.cgroupCreated ?? (intent.cgroupCreated as string[] | undefined);
  let cg: CgroupManager | undefined;
  if (paths && Object.keys(paths).length) cg = openCgroupManager(paths, created ? { created } : {});
  if (cg) {
    await cg.thaw().catch(() => {});
    try {
      cg.signalAll(SIGNALS.KILL);
    } catch {
      // not made yet, or empty
    }
  }
  if (alive) await killAndWait(initPid, BigInt(initStart));
  // Only what was made goes: a cgroup directory the create never reached is absent, which is fine.
  await cg?.destroy().catch((e: Error) => {
    if (!/ENOENT|no such/i.test(e.message)) throw e;
  });
  ctx.state.remove(id);
  if (typeof intent.pidFile === 'string') fs.rmSync(intent.pidFile, { force: true });
  await ctx.recorder.record(id, 'error', { step: 'create', message: `create by cordon process ${intent.pid} (since ${intent.time}) was interrupted; undone` });
}

async function killAndWait(pid: number, start: bigint): Promise<void> {
  let fd: number;
  try {
    fd = openPidfd(pid, start);
  } catch {
    return; // gone meanwhile
  }
  try {
    pidfdSignal(fd, SIGNALS.KILL);
  } catch {
    // exited meanwhile
  }
  // Not our child (its parent died): the pidfd says when it is gone; init reaps it.
  await waitPidfd(fd, 10_000).catch(() => null);
}

/** The log says running but the init may still wait at its exec fifo: let it run, as the recorded start says. */
function releaseInit(ctx: VerbContext, id: string): boolean {
  const fifo = ctx.state.fifo(id);
  if (!fs.existsSync(fifo)) return false;
  let fd = -1;
  try {
    fd = fs.openSync(fifo, O.WRONLY | O.NONBLOCK | O.CLOEXEC);
    fs.writeSync(fd, Buffer.from([0]));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENXIO' && code !== 'ENOENT' && code !== 'EAGAIN') throw e; // released already, or gone
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  fs.rmSync(fifo, { force: true });
  return true;
}

/** Set the freezer to what the log says: paused → frozen, otherwise thawed. True when it had to change. */
async function freezerToLog(ctx: VerbContext, id: string, state: string): Promise<boolean> {
  const rec = ctx.state.read(id);
  if (!rec || !LIVE.has(state) || !isSameProcess(rec.pid, BigInt(rec.pidStartTime))) return false;
  const cg = cgroupOf(rec);
  const frozen = cg.isFrozen();
  if (state === 'paused') {
    if (frozen) return false;
    await cg.freeze();
    return true;
  }
  await cg.thaw(); // also a freeze cut off midway (v1 FREEZING), which reads as not frozen
  return frozen;
}

/** Execs the log has running whose process is gone (their follower died with it): their exits are facts too. */
async function recordGoneExecs(ctx: VerbContext, id: string): Promise<void> {
  const { execs } = ctx.recorder.logged(id).state.context;
  const rec = ctx.state.read(id);
  let inContainer: Set<number> | undefined;
  try {
    inContainer = rec ? new Set(cgroupOf(rec).pids()) : undefined;
  } catch {
    inContainer = undefined;
  }
  for (const [execId, { pid }] of Object.entries(execs ?? {})) {
    if (inContainer?.has(pid)) continue;
    try {
      await ctx.recorder.record(id, 'exec-exit', { execId, pid, exitCode: null, signal: null, unknown: true, reason: 'its follower died' });
    } catch (e) {
      if (!(e instanceof LifecycleError)) throw e;
    }
  }
}
