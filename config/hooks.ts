/**
 * `hooks`: checked for shape only (absolute path, string args/env, positive timeout) and kept as given;
 * the lifecycle code runs them.
 */
import type { OciHooks } from './oci-spec.js';
import { checkAbsolute, describeValue, readArray, readInteger, readObject, readStringArray, requireString } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';
import { readEnvironment } from './process.js';

/** The hook points of the spec, in lifecycle order. */
export const HOOK_POINTS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;

/** A hook point name. */
export type HookPoint = (typeof HOOK_POINTS)[number];

/**
 * Check `hooks`. Every entry needs an absolute `path`; `args` and `env` are string arrays (env entries
 * KEY=VALUE); `timeout` is a positive integer number of seconds. Unknown hook points are ignored, as the
 * spec requires for unknown properties. "prestart" is deprecated and draws a warning.
 *
 * @returns the `hooks` object untouched (undefined when absent); only meaningful when no error was recorded
 */
export function checkHooks(issues: Issues, raw: unknown): OciHooks | undefined {
  const base = 'hooks';
  const hooks = readObject(issues, base, raw);
  if (hooks === undefined) return undefined;
  for (const point of HOOK_POINTS) {
    const pp = childPath(base, point);
    const list = readArray(issues, pp, hooks[point]);
    if (list === undefined) continue;
    if (point === 'prestart' && list.length > 0) issues.warn(pp, 'deprecated; use createRuntime, createContainer or startContainer');
    list.forEach((entry, i) => {
      const p = indexPath(pp, i);
      const h = readObject(issues, p, entry);
      if (h === undefined) {
        if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
        return;
      }
      checkHook(issues, p, h);
    });
  }
  return hooks as OciHooks;
}

function checkHook(issues: Issues, p: string, h: Record<string, unknown>): void {
  const path = requireString(issues, childPath(p, 'path'), h.path);
  if (path !== undefined) checkAbsolute(issues, childPath(p, 'path'), path);
  readStringArray(issues, childPath(p, 'args'), h.args);
  readEnvironment(issues, childPath(p, 'env'), h.env);
  const tp = childPath(p, 'timeout');
  const timeout = readInteger(issues, tp, h.timeout, { min: -(2 ** 31), max: 2 ** 31 - 1 });
  if (timeout !== undefined && timeout <= 0) issues.error(tp, `must be a positive integer (seconds), got ${timeout}`);
}
