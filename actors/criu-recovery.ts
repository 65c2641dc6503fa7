/**
 * What a dead checkpoint or restore means (actors/intent-recovery.ts hands them here):
 *
 * - checkpoint: its fact in the log (the images were complete) — finished: whatever is left of the tree is
 *   killed and the cgroups removed, the container stays checkpointed; no fact — the container stays running
 *   (or paused: the freezer is set to what the log says by the caller), the `checkpointed` marker goes, and
 *   the interruption is an `error` fact;
 * - restore: its fact in the log — completed; no fact — what CRIU restored is killed and the cgroups it made
 *   removed, the container stays checkpointed with its images (a restore under a new id leaves nothing:
 *   no state dir, no pid file), and the interruption is an `error` fact.
 */
import fs from 'node:fs';
import { type CgroupManager, SIGNALS, openCgroupManager, openPidfd, pidfdSignal, waitPidfd } from '../kernel/index.js';
import { settledState } from '../machines/container.js';
import type { Intent } from './container-lock.js';
import { finish } from './verbs/checkpoint.js';
import { cgroupOf } from './verbs/cgroups.js';
import type { VerbContext } from './verbs/context.js';
import { markCheckpointed } from './verbs/criu-plan.js';

/** Finish or undo a checkpoint a dead process left; 'completed' when its fact was in. */
export async function recoverCheckpoint(ctx: VerbContext, id: string, intent: Intent): Promise<'completed' | 'undone'> {
  const logged = ctx.recorder.logged(id);
  const rec = ctx.state.read(id);
  if (settledState(logged.state.value) === 'checkpointed' && logged.seq > intent.seq) {
    if (rec) await finish(ctx, id, rec.pid, cgroupOf(rec));
    return 'completed';
  }
  if (ctx.state.exists(id)) markCheckpointed(ctx.state.dir(id), false);
  await interrupted(ctx, id, intent, 'checkpoint', 'the container runs on');
  return 'undone';
}

/** Finish or undo a restore a dead process left; 'completed' when its fact was in. */
export async function recoverRestore(ctx: VerbContext, id: string, intent: Intent): Promise<'completed' | 'undone'> {
  const logged = ctx.recorder.logged(id);
  if (['running', 'paused', 'stopped'].includes(settledState(logged.state.value)) && logged.seq > intent.seq) return 'completed';
  const paths = intent.cgroupPaths as Record<string, string> | undefined;
  const created = intent.cgroupCreated as string[] | undefined;
  const cg: CgroupManager | undefined = paths && Object.keys(paths).length ? openCgroupManager(paths, created ? { created } : {}) : undefined;
  if (cg) {
    await cg.thaw().catch(() => {});
    try {
      cg.signalAll(SIGNALS.KILL);
    } catch {
      // not made yet, or empty
    }
  }
  if (typeof intent.initPid === 'number' && typeof intent.initStartTime === 'string') await killAndWait(intent.initPid, BigInt(intent.initStartTime));
  await cg?.destroy().catch((e: Error) => {
    if (!/ENOENT|no such/i.test(e.message)) throw e;
  });
  if (typeof intent.pidFile === 'string') fs.rmSync(intent.pidFile, { force: true });
  if (intent.fresh === true) {
    ctx.state.remove(id);
    await interrupted(ctx, id, intent, 'restore', 'undone, nothing of it stays');
  } else await interrupted(ctx, id, intent, 'restore', 'undone, the container stays checkpointed with its images');
  return 'undone';
}

/** The interruption as an `error` fact, unless the verb recorded its own failure already (the log moved since its intent). */
async function interrupted(ctx: VerbContext, id: string, intent: Intent, step: string, what: string): Promise<void> {
  if (ctx.recorder.logged(id).seq > intent.seq) return;
  await ctx.recorder.record(id, 'error', { step, message: `${step} by cordon process ${intent.pid} (since ${intent.time}) was interrupted; ${what}` });
}

async function killAndWait(pid: number, start: bigint): Promise<void> {
  let fd: number;
  try {
    fd = openPidfd(pid, start);
  } catch {
    return; // gone
  }
  try {
    pidfdSignal(fd, SIGNALS.KILL);
  } catch {
    // exited meanwhile
  }
  await waitPidfd(fd, 10_000).catch(() => null);
}
