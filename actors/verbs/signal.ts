/**
 * kill: a signal to the container's init through a pidfd checked against the recorded start time (a reused
 * pid is never signalled), or with `all` to every process of its cgroups (runc kill --all). The `kill` fact
 * is recorded before the signal is sent, so the log never shows the exit it causes ahead of it, and a kill
 * that cannot be recorded is not sent.
 */
import { LifecycleError } from '../../errors/index.js';
import { closeFd, isNoSuchProcess, openPidfd, pidfdSignal } from '../../kernel/index.js';
import { cgroupOf, storedRecord } from './cgroups.js';
import { crashPoint } from '../crash-points.js';
import type { VerbContext } from './context.js';

/** Parameters of kill. */
export interface KillParams {
  signal: number;
  all?: boolean;
}

/** Signal a created, running or paused container (the machine allowed it). */
export async function killContainer(ctx: VerbContext, id: string, p: KillParams): Promise<void> {
  const rec = storedRecord(ctx, id);
  if (p.all) {
    const cg = cgroupOf(rec);
    await ctx.recorder.record(id, 'kill', { signal: p.signal, all: true });
    crashPoint('kill:recorded');
    cg.signalAll(p.signal);
    return;
  }
  let pidfd: number;
  try {
    pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
  } catch (e) {
    if (isNoSuchProcess(e)) throw new LifecycleError('ContainerNotRunning', `cannot signal container ${id}: its init (pid ${rec.pid}) is gone`, { cause: e });
    throw e;
  }
  try {
    await ctx.recorder.record(id, 'kill', { signal: p.signal });
    crashPoint('kill:recorded');
    pidfdSignal(pidfd, p.signal);
  } finally {
    closeFd(pidfd);
  }
}
