/**
 * delete: a live container (created, or forced when running or paused) has every process of its cgroups
 * killed and waited for, and its exit recorded; then its network is torn down, its cgroups removed, the
 * `destroy` fact recorded and its state dir removed; the poststop hooks of create's config run last
 * (failures are warnings). The order keeps the log and the kernel agreeing at every step a crash or a
 * failed append can stop: a `destroy` that cannot be recorded leaves a stopped container with its state dir.
 * A forced delete of a container whose state.json is damaged first writes it again from the log's record.
 */
import fs from 'node:fs';
import { SIGNALS, type CgroupManager, type ExitStatus, openPidfd, pidfdSignal, reapZombieChild, waitPidfd } from '../../kernel/index.js';
import { runHooks } from '../hook-runner.js';
import { openNetns, teardownNetwork } from '../network.js';
import { type ContainerRecord, storedConfigOf } from '../state-dir.js';
import { isDamagedState, recordProblem } from '../state-file.js';
import { cgroupOf } from './cgroups.js';
import { crashPoint } from '../crash-points.js';
import type { VerbContext } from './context.js';
import { recordInitExit } from './watch.js';

/** Parameters of delete. */
export interface DestroyParams {
  force?: boolean;
}

/** Delete a container (the machine allowed it). */
export async function destroyContainer(ctx: VerbContext, id: string, p: DestroyParams = {}): Promise<void> {
  const rec = ctx.state.read(id);
  if (!rec) {
    // No state record: a create that crashed before writing it, or a state dir lost; what is left goes.
    if (ctx.state.exists(id)) for (const w of await teardownNetwork(ctx.state.dir(id), id, '')) ctx.warn(w);
    await ctx.recorder.record(id, 'destroy', { force: p.force === true });
    ctx.state.remove(id);
    return;
  }
  const status = ctx.state.status(rec);
  // Network before the kill, while the namespace exists; after an exit it went with the namespace.
  const netns = status === 'stopped' ? undefined : openNetns(rec.pid, BigInt(rec.pidStartTime));
  try {
    for (const w of await teardownNetwork(ctx.state.dir(id), id, netns?.path ?? '')) ctx.warn(w);
  } finally {
    netns?.close();
  }
  let cg: CgroupManager | undefined;
  try {
    cg = cgroupOf(rec);
  } catch {
    cg = undefined; // a record without cgroups
  }
  await stopEverything(ctx, id, rec, status, cg);
  crashPoint('delete:killed');
  let hooks: ReturnType<typeof storedConfigOf>['hooks'] = {};
  try {
    hooks = storedConfigOf(rec).hooks;
  } catch (e) {
    ctx.warn(`poststop hooks not run: ${(e as Error).message}`); // a record an older cordon wrote: still deletable
  }
  await cg?.destroy();
  crashPoint('delete:cgroups-removed');
  await ctx.recorder.record(id, 'destroy', { force: p.force === true });
  crashPoint('delete:recorded');
  ctx.state.remove(id);
  // poststop: after the container is gone, before delete returns; a failure is only a warning.
  await runHooks(ctx.recorder, id, 'poststop', hooks.poststop, JSON.stringify({ ...ctx.state.ociState(rec), status: 'stopped', pid: 0 }), { kind: 'runtime' }).catch((e: Error) => ctx.warn(e.message));
}

/**
 * What is left of a container the log does not have (a create that crashed before its `create` fact, a
 * delete that crashed after its `destroy` fact): its process killed, network, cgroups and state dir removed.
 * No fact: the log never had this container, or has it destroyed already.
 */
export async function removeLeftovers(ctx: VerbContext, id: string): Promise<void> {
  let rec: ContainerRecord | undefined;
  try {
    rec = ctx.state.read(id);
  } catch (e) {
    // A damaged state file of a container the log does not have: nothing in it can be trusted to kill or remove.
    if (!isDamagedState(e)) throw e;
    ctx.warn(`${(e as Error).message}; the log has no record of it either: its state dir is removed, its processes and cgroups (if any) are not known`);
  }
  const live = rec !== undefined && ctx.state.status(rec) !== 'stopped';
  const netns = rec && live ? openNetns(rec.pid, BigInt(rec.pidStartTime)) : undefined;
  try {
    for (const w of await teardownNetwork(ctx.state.dir(id), id, netns?.path ?? '')) ctx.warn(w);
  } finally {
    netns?.close();
  }
  if (rec) {
    let cg: CgroupManager | undefined;
    try {
      cg = cgroupOf(rec);
    } catch {
      cg = undefined;
    }
    if (live) {
      await cg?.thaw().catch(() => {});
      try {
        cg?.signalAll(SIGNALS.KILL);
      } catch {
        // gone meanwhile
      }
      await killAndWait(rec);
    }
    await cg?.destroy();
  }
  ctx.state.remove(id);
}

/** Kill every process of a live container (not only init: one without its own pid namespace leaves children), wait, record the exit. */
async function stopEverything(ctx: VerbContext, id: string, rec: ContainerRecord, status: string, cg: CgroupManager | undefined): Promise<void> {
  if (status !== 'stopped' && ['created', 'running', 'paused'].includes((await ctx.recorder.stateOf(id)).value)) {
    // The kill is a fact before it is done: a delete whose facts cannot be recorded kills nothing.
    await ctx.recorder.record(id, 'kill', { signal: SIGNALS.KILL, all: true, reason: 'delete' });
    crashPoint('delete:kill-recorded');
  }
  const init = ctx.followed.get(id);
  ctx.followed.delete(id);
  if (status !== 'stopped') {
    if (status === 'paused') await cg?.thaw().catch(() => {});
    try {
      cg?.signalAll(SIGNALS.KILL);
    } catch {
      // gone meanwhile
    }
  }
  if (init && init.pid === rec.pid && init.handle.pidfd >= 0) {
    // Still followed by its handle in this process: kill and wait through it. A second waiter would reap the
    // child under the handle, whose exited promise then never settles while it polls the pidfd in a busy loop.
    if (status !== 'stopped') init.kill(SIGNALS.KILL);
    await recordInitExit(ctx, id, await init.exited);
    return;
  }
  if (status !== 'stopped') {
    // Its status is known when it is our child (reaped through the pidfd); else only that SIGKILL ended it.
    const st = await killAndWait(rec);
    if (st) await recordInitExit(ctx, id, st);
    else await ctx.recorder.recordExit(id, { pid: rec.pid, exitCode: null, signal: SIGNALS.KILL, unknown: true });
    return;
  }
  // A child of ours nothing followed any more (a reopened library): reaped, its status known.
  const reaped = reapZombieChild(rec.pid, BigInt(rec.pidStartTime));
  if (reaped) {
    await recordInitExit(ctx, id, reaped);
    return;
  }
  // It ended where nobody was watching (a detached container): the exit is a fact too.
  await ctx.recorder.recordExit(id, { pid: rec.pid, exitCode: null, signal: null, unknown: true });
}

async function killAndWait(rec: ContainerRecord): Promise<ExitStatus | null> {
  let pidfd: number;
  try {
    pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
  } catch {
    return reapZombieChild(rec.pid, BigInt(rec.pidStartTime)); // already gone (reaped here if it is our child)
  }
  try {
    pidfdSignal(pidfd, SIGNALS.KILL);
  } catch {
    // exited meanwhile
  }
  return waitPidfd(pidfd, 10_000);
}

/**
 * Before a forced delete: a damaged state.json is written again from the record its `create` fact carried
 * (state.json is written once, at create, with that very record), so the delete finds its process, cgroups and
 * network as usual; without such a record the file goes, and the delete removes the state dir and records what
 * the log needs (its processes and cgroups are not known: a warning says so).
 */
export async function repairDamagedState(ctx: VerbContext, id: string): Promise<void> {
  try {
    ctx.state.read(id);
    return;
  } catch (e) {
    if (!isDamagedState(e)) throw e;
    const fromLog = await ctx.recorder.createdRecordOf(id);
    if (fromLog && recordProblem(fromLog, id) === undefined) {
      ctx.state.write(fromLog as unknown as ContainerRecord);
      ctx.warn(`${e.message}; written again from its create event, to delete it`);
    } else {
      fs.rmSync(e.file, { force: true });
      ctx.warn(`${e.message}; the log has no record of it either: its state dir is removed, its processes and cgroups (if any) are not known`);
    }
  }
}
