/**
 * Fault injection: named steps of every verb where a test can make cordon die (SIGKILL, as a crash or an OOM
 * kill would) or fail (an injected EIO), to check that whatever opens the root next finds the log and the
 * kernel agreeing. Always compiled in and inert unless CORDON_CRASH_AT or CORDON_FAIL_AT names a step
 * (comma-separated; `verb:*` names every step of a verb).
 *
 *   CORDON_CRASH_AT=create:spawned cordon create -b B c1    # dies right after the init was cloned
 */
import { LifecycleError } from '../errors/index.js';

/** Every named step of the verbs, in the order each verb passes them. `<verb>:intent` follows the intent written; `<verb>:done` the outcome recorded. */
export const VERB_CRASH_POINTS = [
  'create:intent', 'create:cgroups', 'create:spawned', 'create:state', 'create:done',
  'start:intent', 'start:recorded', 'start:released', 'start:done',
  'pause:intent', 'pause:frozen', 'pause:done',
  'resume:intent', 'resume:thawed', 'resume:done',
  'kill:intent', 'kill:recorded', 'kill:done',
  'delete:intent', 'delete:kill-recorded', 'delete:killed', 'delete:cgroups-removed', 'delete:recorded', 'delete:done',
  'exec:intent', 'exec:recorded', 'exec:done',
  'update:intent', 'update:recorded', 'update:done',
  'checkpoint:intent', 'checkpoint:dumped', 'checkpoint:recorded', 'checkpoint:done',
  'restore:intent', 'restore:cgroups', 'restore:restored', 'restore:recorded', 'restore:done',
] as const;

/**
 * The daemon's control socket: a create request read before anything is done for it; the container created
 * and recorded before the answer is written; half of the answer written (a reply cut short).
 */
export const CONTROL_SOCKET_CRASH_POINTS = ['control-socket:before-create', 'control-socket:after-create', 'control-socket:mid-answer'] as const;

/** Every named step. */
export const CRASH_POINTS = [...VERB_CRASH_POINTS, ...CONTROL_SOCKET_CRASH_POINTS] as const;

/** A named step of a verb. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

const parse = (v: string | undefined): string[] => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);
const CRASH = parse(process.env.CORDON_CRASH_AT);
const FAIL = parse(process.env.CORDON_FAIL_AT);

const matches = (names: string[], p: string) => names.some((n) => n === p || (n.endsWith(':*') && p.startsWith(n.slice(0, -1))));

/**
 * Pass a named step: dies here when CORDON_CRASH_AT names it (after `first`, the part of the step done before the
 * crash, such as half of a write), throws an injected failure when CORDON_FAIL_AT does.
 */
export function crashPoint(p: CrashPoint, first?: () => void): void {
  if (CRASH.length && matches(CRASH, p)) {
    first?.();
    process.stderr.write(`cordon: crash point ${p}: killing this process (CORDON_CRASH_AT)\n`);
    process.kill(process.pid, 'SIGKILL');
  }
  if (FAIL.length && matches(FAIL, p)) throw new LifecycleError('SystemError', `injected failure at ${p} (CORDON_FAIL_AT): EIO`, { errno: 5 });
}
