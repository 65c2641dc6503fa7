/**
 * Sections that later stages consume as given — `linux.resources`, `linux.seccomp`, `linux.cgroupsPath`,
 * `annotations` — and Linux extras cordon does not apply yet (`intelRdt`, `personality`, `mountLabel`):
 * checked for shape here so a malformed config fails before anything is created.
 */
import { UINT32, UINT64_MAX, describeValue, readArray, readBigInteger, readInteger, readObject, readString, readStringArray } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** seccomp actions of the runtime spec. */
export const SECCOMP_ACTIONS: readonly string[] = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
/** seccomp argument comparison operators of the runtime spec. */
export const SECCOMP_OPERATORS: readonly string[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];

function checkAction(issues: Issues, p: string, raw: unknown, required: boolean): string | undefined {
  const a = readString(issues, p, raw);
  if (a === undefined) {
    if (required && (raw === undefined || raw === null)) issues.error(p, 'required field is missing');
    return undefined;
  }
  if (!SECCOMP_ACTIONS.includes(a)) issues.error(p, `unknown seccomp action ${JSON.stringify(a)}`);
  return a;
}

/**
 * Check `linux.seccomp` for shape: known actions and operators, string name lists, integer arguments,
 * and a listenerPath when SCMP_ACT_NOTIFY is used. Absent, or no defaultAction and no syscalls, means
 * seccomp is off (runc's rule).
 */
export function checkSeccomp(issues: Issues, raw: unknown): void {
  const base = 'linux.seccomp';
  const s = readObject(issues, base, raw);
  if (s === undefined) return;
  const syscalls = readArray(issues, childPath(base, 'syscalls'), s.syscalls) ?? [];
  const actions: (string | undefined)[] = [checkAction(issues, childPath(base, 'defaultAction'), s.defaultAction, syscalls.length > 0)];
  readInteger(issues, childPath(base, 'defaultErrnoRet'), s.defaultErrnoRet, UINT32);
  readStringArray(issues, childPath(base, 'architectures'), s.architectures);
  readStringArray(issues, childPath(base, 'flags'), s.flags);
  const listenerPath = readString(issues, childPath(base, 'listenerPath'), s.listenerPath);
  readString(issues, childPath(base, 'listenerMetadata'), s.listenerMetadata);
  syscalls.forEach((entry, i) => {
    const p = indexPath(childPath(base, 'syscalls'), i);
    const c = readObject(issues, p, entry);
    if (c === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const names = readStringArray(issues, childPath(p, 'names'), c.names);
    if (names === undefined && (c.names === undefined || c.names === null)) issues.error(childPath(p, 'names'), 'required field is missing');
    else if (names !== undefined && names.length === 0 && Array.isArray(c.names) && c.names.length === 0) {
      issues.error(childPath(p, 'names'), 'must have at least one element');
    }
    actions.push(checkAction(issues, childPath(p, 'action'), c.action, true));
    readInteger(issues, childPath(p, 'errnoRet'), c.errnoRet, UINT32);
    (readArray(issues, childPath(p, 'args'), c.args) ?? []).forEach((arg, j) => {
      const ap = indexPath(childPath(p, 'args'), j);
      const a = readObject(issues, ap, arg);
      if (a === undefined) return;
      readInteger(issues, childPath(ap, 'index'), a.index, { min: 0, max: 5 });
      readBigInteger(issues, childPath(ap, 'value'), a.value, 0n, UINT64_MAX);
      readBigInteger(issues, childPath(ap, 'valueTwo'), a.valueTwo, 0n, UINT64_MAX);
      const op = readString(issues, childPath(ap, 'op'), a.op);
      if (op === undefined && (a.op === undefined || a.op === null)) issues.error(childPath(ap, 'op'), 'required field is missing');
      else if (op !== undefined && !SECCOMP_OPERATORS.includes(op)) issues.error(childPath(ap, 'op'), `unknown seccomp operator ${JSON.stringify(op)}`);
    });
  });
  if (actions.includes('SCMP_ACT_NOTIFY') && !listenerPath) {
    issues.error(childPath(base, 'listenerPath'), 'required when SCMP_ACT_NOTIFY is used');
  }
}

/** Check `linux.resources` is an object (its contents are the cgroup layer's to check). */
export function checkResources(issues: Issues, raw: unknown): void {
  readObject(issues, 'linux.resources', raw);
}

/** Check `linux.cgroupsPath` is a string. */
export function checkCgroupsPath(issues: Issues, raw: unknown): void {
  readString(issues, 'linux.cgroupsPath', raw);
}

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
