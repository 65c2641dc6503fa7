/**
 * Crash points: named places where a cordon process kills itself with SIGKILL when the environment asks for it,
 * so tests can stop a daemon (or any process) at an exact step of a request and check what the others make of
 * it. Compiled in always and inert unless `CORDON_CRASH_AT` names the point (a comma-separated list of names
 * such as `control-socket:after-create`); a name is `<where>:<moment>`, and README.md lists them.
 */

/** The environment variable naming the crash points that are armed. */
export const CRASH_AT_ENV = 'CORDON_CRASH_AT';

/** The crash points cordon has. */
export const CRASH_POINTS = [
  /** The daemon's control socket: a create request read, before anything is done for it. */
  'control-socket:before-create',
  /** The daemon's control socket: the container created and recorded, before the answer is written. */
  'control-socket:after-create',
  /** The daemon's control socket: half of the answer written (a reply cut short). */
  'control-socket:mid-answer',
] as const;

/** One crash point. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** Whether CORDON_CRASH_AT names `point`. */
export function crashArmed(point: CrashPoint, env: NodeJS.ProcessEnv = process.env): boolean {
  const armed = env[CRASH_AT_ENV];
  return armed !== undefined && armed !== '' && armed.split(',').map((s) => s.trim()).includes(point);
}

/**
 * SIGKILL this process here when CORDON_CRASH_AT names `point` (after `first`, the part of the step done before
 * the crash, such as half of a write); nothing otherwise.
 */
export function crashPoint(point: CrashPoint, first?: () => void): void {
  if (!crashArmed(point)) return;
  first?.();
  process.kill(process.pid, 'SIGKILL');
}
