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
] as const;

/** One crash point. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** SIGKILL this process here when CORDON_CRASH_AT names `point`; nothing otherwise. */
export function crashPoint(point: CrashPoint, env: NodeJS.ProcessEnv = process.env): void {
  const armed = env[CRASH_AT_ENV];
  if (armed === undefined || armed === '') return;
  if (!armed.split(',').map((s) => s.trim()).includes(point)) return;
  process.kill(process.pid, 'SIGKILL');
}
