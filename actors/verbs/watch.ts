/**
 * The watchers a container's machine invokes while it is created, running or paused: the init's exit
 * (through the handle of an init this process created — exit code known — or a pidfd of one it adopted)
 * and OOM kills (the cgroup's OOM event). Each fact is recorded before the machine hears of it; a watcher
 * aborted when its state is left records nothing more.
 */
import { type ExitStatus, SIGNALS, isNoSuchProcess, openPidfd, parentPid, reapZombieChild, waitPidfd } from '../../kernel/index.js';
import type { LoggedState } from '../event-recorder.js';
import { cgroupOf, storedRecord } from './cgroups.js';
import type { VerbContext } from './context.js';

/**
 * Record how an init this process followed ended: an OOM kill is a fact of its own, logged before the exit
 * unless a watcher logged one already. Returns false when the exit was recorded by another writer first.
 */
export async function recordInitExit(ctx: VerbContext, id: string, st: ExitStatus, pid?: number): Promise<boolean> {
  const rec = ctx.state.read(id);
  let oomKilled = false;
  try {
    oomKilled = st.signal === SIGNALS.KILL && rec !== undefined && cgroupOf(rec).oomKillCount() > 0;
  } catch {
    // no cgroups recorded: unknown, false
  }
  const now = await ctx.recorder.stateOf(id);
  if (oomKilled && now.context.oomEvents === 0 && ['created', 'running', 'paused'].includes(now.value)) await ctx.recorder.record(id, 'oom', { killed: true });
  return ctx.recorder.recordExit(id, { pid: pid ?? rec?.pid ?? now.context.pid, exitCode: st.code, signal: st.signal, oomKilled });
}

/**
 * Wait for the container's init to end and record its exit; resolves with where the log then has the
 * container, or undefined when aborted first.
 */
export async function watchInitExit(ctx: VerbContext, id: string, abort: AbortSignal): Promise<LoggedState | undefined> {
  const followed = ctx.followed.get(id);
  if (followed) {
    const st = await Promise.race([followed.exited, new Promise<null>((r) => abort.addEventListener('abort', () => r(null), { once: true }))]);
    if (st === null || abort.aborted) return undefined;
    await recordInitExit(ctx, id, st, followed.pid);
    return ctx.recorder.logged(id);
  }
  const rec = ctx.state.read(id);
  let pidfd = -1;
  // Who reaps it: a parent that is another cordon process (a foreground `cordon run`, another supervisor)
  // records how it ended, exit code included; -1 when it was reaped before this watch looked.
  let parent = -1;
  if (rec) {
    // A child of ours that exited while nothing here followed it (a reopened library): reaped, its status known.
    const reaped = reapZombieChild(rec.pid, BigInt(rec.pidStartTime));
    if (reaped) {
      await recordInitExit(ctx, id, reaped, rec.pid);
      return ctx.recorder.logged(id);
    }
    parent = parentPid(rec.pid);
    try {
      pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
    } catch (e) {
      // Gone before the watch began (a short-lived container started by another process): the exit is still a fact.
      if (!isNoSuchProcess(e)) throw e;
    }
  }
  if (pidfd >= 0) {
    try {
      await waitPidfd(pidfd, undefined, abort);
    } catch (e) {
      if (abort.aborted) return undefined;
      throw e;
    }
  }
  if (abort.aborted) return undefined;
  // Give that parent the chance before recording an exit whose status nobody here can know (not for an orphan
  // of pid 1, which records nothing).
  if (rec && parent !== 1 && parent !== process.pid) {
    await ctx.recorder.waitFor(id, (s) => !['created', 'running', 'paused'].includes(s.state.value), PARENT_GRACE_MS);
    if (abort.aborted) return undefined;
  }
  await ctx.recorder.recordExit(id, { ...(rec ? { pid: rec.pid } : {}), exitCode: null, signal: null, unknown: true, reason: !rec ? 'its state is gone' : pidfd >= 0 ? 'adopted: not our child' : 'gone before it was watched' });
  return ctx.recorder.logged(id);
}

/** How long a watcher that is not the init's parent waits for the parent to record the exit. */
const PARENT_GRACE_MS = 2000;

/** Call `onOom` with where the log has the container after each OOM kill in it (recorded first); returns the stop function. */
export function watchOomKills(ctx: VerbContext, id: string, onOom: (s: LoggedState) => void, onError: (e: Error) => void): () => void {
  const cg = cgroupOf(storedRecord(ctx, id));
  return cg.watchOom(() => {
    ctx.recorder.record(id, 'oom', {}).then(() => onOom(ctx.recorder.logged(id)), onError);
  });
}
