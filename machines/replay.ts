/**
 * Rebuilding machines from the log: each logged action maps to the machine events that produced it,
 * folded through the lifecycle table's pure reducer (the machine's transition function without xstate's
 * per-event overhead; no actor runs, nothing touches the kernel), then turned into machine snapshots.
 */
import { type ContainerEvent, type ContainerStateName, LIFECYCLE, type LifecycleState, initialLifecycle, reduce } from './lifecycle.js';

/** The part of a logged event replay needs (structurally an events/ CordonEvent). */
export interface LoggedFact {
  action: string;
  containerId: string;
  attributes: Record<string, unknown>;
  /** The transition the writer logged with it (its machine's state before and after). */
  from?: string;
  to?: string;
}

const num = (x: unknown): number | null => (typeof x === 'number' ? x : null);

/** The machine events a logged action stands for (a completed checkpoint went through checkpointing). */
export function machineEventsOf(f: LoggedFact): ContainerEvent[] {
  const a = f.attributes;
  switch (f.action) {
    case 'create':
      return [{ type: 'created', pid: num(a.pid) ?? 0 }];
    case 'start':
    case 'pause':
    case 'resume':
    case 'update':
    case 'oom':
      return [{ type: f.action }];
    case 'kill':
      return [{ type: 'kill', signal: num(a.signal) ?? 15 }];
    case 'exit':
      return [{ type: 'exited', exitCode: num(a.exitCode), signal: num(a.signal), oomKilled: a.oomKilled === true, unknown: a.unknown === true }];
    case 'checkpoint':
      // --leave-running: images written, the container runs on (no move).
      return a.leaveRunning === true ? [] : [{ type: 'checkpoint' }, { type: 'checkpointed' }];
    case 'restore':
      // Under a new id (restore -b BUNDLE) the container is born running; else a checkpointed one comes back.
      return a.fresh === true ? [{ type: 'restored', pid: num(a.pid) ?? 0 }] : [{ type: 'restore' }, { type: 'restored', pid: num(a.pid) ?? 0 }];
    case 'exec-start':
      return [{ type: 'exec-started', execId: String(a.execId), pid: num(a.pid) ?? 0 }];
    case 'exec-exit':
      return [{ type: 'exec-exited', execId: String(a.execId), exitCode: num(a.exitCode) }];
    case 'destroy':
      return [{ type: 'destroy', force: true }];
    case 'error':
      return [{ type: 'error', message: String(a.message ?? 'error'), step: typeof a.step === 'string' ? a.step : undefined, errno: num(a.errno) ?? undefined }];
    default:
      return [];
  }
}

/** A fact that starts a container's life: its `create`, or a restore under a new id (`restore` with `fresh`). */
export function startsLife(f: Pick<LoggedFact, 'action' | 'attributes'>): boolean {
  return f.action === 'create' || (f.action === 'restore' && f.attributes.fresh === true);
}

const isStateName = (x: unknown): x is ContainerStateName => typeof x === 'string' && Object.hasOwn(LIFECYCLE, x);

/**
 * Apply one logged fact, purely. A fact the state does not take but that was logged as a transition from
 * another state means facts before it are missing (a damaged record the journal quarantined): the state it
 * logged is taken, so a later fact is not refused for ever (reconciling with the kernel does the rest).
 */
export function applyFact(s: LifecycleState, f: LoggedFact): LifecycleState {
  // A destroyed container's id may be used again (as runc allows): its `create` starts a new life.
  const start = s.value === 'destroyed' && startsLife(f) ? initialLifecycle(f.containerId) : s;
  let cur = start;
  for (const ev of machineEventsOf(f)) cur = reduce(cur, ev);
  if (cur === start && f.from !== undefined && f.from !== start.value && isStateName(f.from) && isStateName(f.to) && f.to !== start.value) {
    const pid = typeof f.attributes.pid === 'number' ? f.attributes.pid : start.context.pid;
    return { value: f.to, context: { ...start.context, ...(pid === undefined ? {} : { pid }) } };
  }
  return cur;
}

/** Rebuild every container's state from a log, in order. */
export function replayFacts(facts: Iterable<LoggedFact>): Map<string, LifecycleState> {
  const out = new Map<string, LifecycleState>();
  for (const f of facts) out.set(f.containerId, applyFact(out.get(f.containerId) ?? initialLifecycle(f.containerId), f));
  return out;
}

