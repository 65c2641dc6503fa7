/**
 * checkpoint, as runc: CRIU dumps the container's process tree into an images directory (default
 * ./checkpoint). Without --leave-running the tree is gone afterwards, its cgroups removed, and the container
 * is `checkpointed`: its state dir keeps the config of create and where the images are (checkpoint.json),
 * so `restore` with the same id brings it back. The `checkpoint` fact is recorded at CRIU's post-dump
 * notify — images complete, tasks still frozen — so no exit watcher can record the tree's end as an exit
 * first. CRIU freezes the tree through its freezer cgroup (as runc has it do), so a paused container is taken
 * as it is and, with --leave-running, stays paused. A failure leaves the container as it was and is an `error` fact.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LifecycleError } from '../../errors/index.js';
import { type CgroupManager, type CriuDumpOptions, openPidfd, waitPidfd } from '../../kernel/index.js';
import { crashPoint } from '../crash-points.js';
import { readNetworkRecord } from '../network.js';
import { storedConfigOf } from '../state-dir.js';
import { cgroupOf } from './cgroups.js';
import type { VerbContext } from './context.js';
import { type CheckpointParams, type CheckpointResult, NETNS_KEY, bindMounts, commonOptions, criuLayer, dirBytes, joinedNetns, markCheckpointed, maskedFiles, saveDescriptors, writeCheckpointRecord } from './criu-plan.js';

/** Failures already recorded as `error` facts. */
const recorded = new WeakSet<object>();

/** Checkpoint a running or paused container (the machine allowed it); a failure is an `error` fact. */
export async function checkpointContainer(ctx: VerbContext, id: string, p: CheckpointParams = {}): Promise<CheckpointResult> {
  try {
    return await dump(ctx, id, p);
  } catch (e) {
    if (!(e instanceof Object && recorded.has(e))) await recordFailure(ctx, id, e, path.resolve(p.imagePath ?? 'checkpoint'));
    throw e;
  }
}

async function dump(ctx: VerbContext, id: string, p: CheckpointParams): Promise<CheckpointResult> {
  const rec = ctx.state.require(id);
  if (ctx.state.status(rec) === 'stopped') throw new LifecycleError('ContainerNotRunning', `cannot checkpoint container ${id}: its init is gone`);
  const dir = ctx.state.dir(id);
  if (readNetworkRecord(dir)) {
    throw new LifecycleError('Unsupported', `cannot checkpoint container ${id}: it has a network cordon set up (org.cordon.network); CRIU cannot take its interfaces across`, { field: 'network' });
  }
  const { setup } = storedConfigOf(rec);
  const criu = await criuLayer();
  const imagePath = path.resolve(p.imagePath ?? 'checkpoint');
  const common = commonOptions(p, imagePath);
  makeDir(imagePath, 'imagePath');
  if (common.workDir && common.workDir !== imagePath) makeDir(common.workDir, 'workPath');
  const netns = joinedNetns(setup);
  const opts: CriuDumpOptions = {
    ...common,
    pid: rec.pid,
    root: rec.rootfs,
    logFile: 'dump.log',
    ...(p.leaveRunning ? { leaveRunning: true } : {}),
    externalMounts: [...bindMounts(setup).map((m) => ({ key: m.destination, value: m.destination })), ...maskedFiles(setup, rec.pid).map((f) => ({ key: f, value: '/dev/null' }))],
    ...(netns ? { external: [`net[${nsInode(netns)}]:${NETNS_KEY}`] } : {}),
  };
  saveDescriptors(imagePath, rec.pid);
  const cg = cgroupOf(rec);
  const wasPaused = cg.isFrozen();
  const started = Date.now();
  let result: CheckpointResult | undefined;
  const record = async (): Promise<void> => {
    if (result) return;
    const r: CheckpointResult = { imagePath, workPath: common.workDir ?? imagePath, imagesBytes: dirBytes(imagePath), durationMs: Date.now() - started, leaveRunning: p.leaveRunning === true };
    writeCheckpointRecord(dir, { imagePath, workPath: r.workPath, time: new Date().toISOString(), leaveRunning: r.leaveRunning });
    if (!p.leaveRunning) markCheckpointed(dir, true);
    crashPoint('checkpoint:dumped');
    try {
      await ctx.recorder.record(id, 'checkpoint', { ...r, pid: rec.pid, ...(wasPaused ? { paused: true } : {}) });
    } catch (e) {
      markCheckpointed(dir, false);
      throw e;
    }
    result = r;
    crashPoint('checkpoint:recorded');
  };
  let notifyError: unknown;
  const freezeCgroup = rec.cgroupPaths?.freezer ?? rec.cgroupPaths?.unified;
  try {
    await criu.criuDump({
      ...opts,
      ...(freezeCgroup ? { freezeCgroup } : {}),
      // Images complete, tasks still frozen: the fact goes in before CRIU kills them (a rejection aborts the dump).
      notify: async (script) => {
        if (script !== 'post-dump' || p.leaveRunning) return;
        try {
          await record();
        } catch (e) {
          notifyError = e;
          throw e;
        }
      },
    });
    // A failed post-dump step CRIU went past: the dump failed for cordon.
    if (notifyError !== undefined) throw notifyError;
  } catch (e) {
    if (result) {
      // The fact is in: finish as recorded (the tree must go) rather than leave a checkpointed container running.
      await finish(ctx, id, rec.pid, cg);
      if (e instanceof Error) {
        e.message += ` (after the images were complete and the checkpoint recorded: the container is checkpointed, its images in ${imagePath})`;
        recorded.add(e); // not a failed checkpoint: no error fact
      }
      throw e;
    }
    await recordFailure(ctx, id, e, imagePath);
    if (e instanceof Object) recorded.add(e);
    throw withLog(e, common.workDir ?? imagePath, 'dump.log');
  }
  if (p.leaveRunning) {
    await record();
    return result as unknown as CheckpointResult;
  }
  await record(); // a CRIU layer that did not call post-dump: recorded now
  await finish(ctx, id, rec.pid, cg);
  return result as unknown as CheckpointResult;
}

/**
 * After a dump that ends the tree: wait for the init to be gone (reaped when it is this process's child), then
 * remove its cgroups, as runc destroys them after a checkpoint. Also a recovery's way to finish a checkpoint.
 */
export async function finish(ctx: VerbContext, id: string, pid: number, cg: CgroupManager): Promise<void> {
  const init = ctx.followed.get(id);
  ctx.followed.delete(id);
  // Whatever CRIU left (a dump cut off after the fact was recorded) goes the way CRIU would have sent it.
  await cg.thaw().catch(() => {});
  try {
    cg.signalAll(9);
  } catch {
    // empty already
  }
  if (init && init.pid === pid) await init.exited;
  else {
    let fd = -1;
    try {
      fd = openPidfd(pid);
    } catch {
      fd = -1; // gone already
    }
    if (fd >= 0) await waitPidfd(fd, 10_000).catch(() => null);
  }
  await cg.destroy();
}

function makeDir(dir: string, field: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LifecycleError('SystemError', `checkpoint: cannot make ${field} ${dir}: ${err.code ?? err.message}`, { field, ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}) });
  }
}

function nsInode(file: string): number {
  try {
    return fs.statSync(file).ino;
  } catch (e) {
    throw new LifecycleError('SystemError', `checkpoint: the network namespace ${file} the container joined: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { field: 'linux.namespaces' });
  }
}

/** A failed checkpoint or restore is a fact (an `error` event; the container stays where it was). */
export async function recordFailure(ctx: VerbContext, id: string, e: unknown, imagePath: string, step = 'checkpoint'): Promise<void> {
  const err = e as Error & { errno?: number };
  try {
    await ctx.recorder.record(id, 'error', { step, message: err.message, imagePath, ...(typeof err.errno === 'number' ? { errno: err.errno } : {}) });
  } catch (le) {
    err.message = `${err.message} (and the failure could not be recorded: ${(le as Error).message})`;
  }
}

/** The error of a CRIU operation, naming its log file. */
export function withLog(e: unknown, workDir: string, log: string): unknown {
  if (e instanceof Error && !(e instanceof LifecycleError && e.code === 'Unsupported') && !e.message.includes(log)) e.message += ` (CRIU's log: ${path.join(workDir, log)})`;
  return e;
}
