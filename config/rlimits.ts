/**
 * `process.rlimits`: OCI rlimit names to RLIMIT_* numbers with 64-bit soft and hard limits
 * (18446744073709551615 is RLIM_INFINITY).
 */
import { RLIMITS } from './linux/rlimit-numbers.js';
import type { RlimitSetup } from './model.js';
import { UINT64_MAX, describeValue, readArray, readObject, readString, requireBigInteger } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** RLIM_INFINITY: no limit. */
export const RLIM_INFINITY: bigint = UINT64_MAX;

/**
 * Convert `process.rlimits`. The type must be a known RLIMIT_* name and appear once; soft and hard are
 * required non-negative integers up to 2^64-1 with soft <= hard (setrlimit would fail otherwise).
 */
export function convertRlimits(issues: Issues, raw: unknown): RlimitSetup[] {
  const base = 'process.rlimits';
  const list = readArray(issues, base, raw) ?? [];
  const out: RlimitSetup[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    const p = indexPath(base, i);
    const o = readObject(issues, p, entry);
    if (o === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const tp = childPath(p, 'type');
    const name = readString(issues, tp, o.type);
    let resource: number | undefined;
    if (name === undefined) {
      if (o.type === undefined || o.type === null) issues.error(tp, 'required field is missing');
    } else if (!Object.hasOwn(RLIMITS, name)) {
      issues.error(tp, `unknown rlimit ${JSON.stringify(name)}`);
    } else if (seen.has(name)) {
      issues.error(tp, `duplicate rlimit ${JSON.stringify(name)} (already at ${indexPath(base, seen.get(name) ?? 0)})`);
    } else {
      seen.set(name, i);
      resource = RLIMITS[name];
    }
    const soft = requireBigInteger(issues, childPath(p, 'soft'), o.soft, 0n, UINT64_MAX);
    const hard = requireBigInteger(issues, childPath(p, 'hard'), o.hard, 0n, UINT64_MAX);
    if (soft !== undefined && hard !== undefined && soft > hard) {
      issues.error(childPath(p, 'soft'), `soft limit ${soft} is greater than hard limit ${hard}`);
      return;
    }
    if (name !== undefined && resource !== undefined && soft !== undefined && hard !== undefined) {
      out.push({ name, resource, soft, hard });
    }
  });
  return out;
}
