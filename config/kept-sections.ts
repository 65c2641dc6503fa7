/**
 * `annotations`, and Linux extras cordon does not apply yet (`intelRdt`, `personality`, `mountLabel`):
 * checked for shape here so a malformed config fails before anything is created.
 */
import { describeValue, readObject, readString, readStringArray } from './field-checks.js';
import { childPath, type Issues } from './issues.js';

/** Check `annotations`: non-empty keys, string values. Returns a copy (empty when absent). */
export function readAnnotations(issues: Issues, raw: unknown): Record<string, string> {
  const o = readObject(issues, 'annotations', raw);
  const out: Record<string, string> = {};
  if (o === undefined) return out;
  for (const [k, v] of Object.entries(o)) {
    const p = childPath('annotations', k);
    if (k === '') issues.error(p, 'annotation keys must not be empty');
    else if (typeof v !== 'string') issues.error(p, `expected a string, got ${describeValue(v)}`);
    else out[k] = v;
  }
  return out;
}

/** Check `linux.intelRdt` (runc's closID rule); cordon does not apply it yet, so a valid one draws a warning. */
export function checkIntelRdt(issues: Issues, raw: unknown): void {
  const base = 'linux.intelRdt';
  const o = readObject(issues, base, raw);
  if (o === undefined) return;
  const before = issues.errorCount;
  const closID = readString(issues, childPath(base, 'closID'), o.closID);
  if (closID === '.' || closID === '..' || closID?.includes('/')) issues.error(childPath(base, 'closID'), `invalid CLOS id ${JSON.stringify(closID)}`);
  readString(issues, childPath(base, 'l3CacheSchema'), o.l3CacheSchema);
  readString(issues, childPath(base, 'memBwSchema'), o.memBwSchema);
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not support Intel RDT yet');
}

/** Check `linux.personality`: domain LINUX or LINUX32 (flags are ignored, as runc does); not applied yet. */
export function checkPersonality(issues: Issues, raw: unknown): void {
  const base = 'linux.personality';
  const o = readObject(issues, base, raw);
  if (o === undefined) return;
  const before = issues.errorCount;
  const dp = childPath(base, 'domain');
  const domain = readString(issues, dp, o.domain);
  if (domain === undefined) {
    if (o.domain === undefined || o.domain === null) issues.error(dp, 'required field is missing');
  } else if (domain !== 'LINUX' && domain !== 'LINUX32') {
    issues.error(dp, `unknown personality domain ${JSON.stringify(domain)} (expected LINUX or LINUX32)`);
  }
  const flags = readStringArray(issues, childPath(base, 'flags'), o.flags);
  if (flags !== undefined && flags.length > 0) issues.warn(childPath(base, 'flags'), 'ignored (runc does not support personality flags either)');
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not set the execution domain yet');
}

/** Check `linux.mountLabel` is a string; a non-empty one is not applied yet and draws a warning. */
export function checkMountLabel(issues: Issues, raw: unknown): void {
  const label = readString(issues, 'linux.mountLabel', raw);
  if (label) issues.warn('linux.mountLabel', 'not applied: cordon does not label mounts yet');
}
