/**
 * `process.ioPriority`, `process.scheduler` and `process.execCPUAffinity` (spec 1.1/1.2): checked with
 * runc's rules. ContainerSetup has no place for them yet, so valid ones draw a "not applied" warning.
 */
import { INT32, UINT64_MAX, describeValue, readBigInteger, readInteger, readObject, readString, readStringArray } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** I/O priority classes of ioprio_set(2). */
export const IOPRIO_CLASSES: readonly string[] = ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE'];
/** Scheduling policies of sched_setattr(2). */
export const SCHED_POLICIES: readonly string[] = ['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'];
/** sched_setattr(2) flag names. */
export const SCHED_FLAGS: readonly string[] = [
  'SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_RECLAIM', 'SCHED_FLAG_DL_OVERRUN', 'SCHED_FLAG_KEEP_POLICY',
  'SCHED_FLAG_KEEP_PARAMS', 'SCHED_FLAG_UTIL_CLAMP_MIN', 'SCHED_FLAG_UTIL_CLAMP_MAX',
];

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/** Check `process.ioPriority`: a known class and a priority 0..7. */
export function checkIoPriority(issues: Issues, raw: unknown): void {
  const base = 'process.ioPriority';
  const o = readObject(issues, base, raw);
  if (o === undefined) return;
  const before = issues.errorCount;
  const cls = readString(issues, childPath(base, 'class'), o.class);
  if (cls === undefined) {
    if (o.class === undefined || o.class === null) issues.error(childPath(base, 'class'), 'required field is missing');
  } else if (!IOPRIO_CLASSES.includes(cls)) {
    issues.error(childPath(base, 'class'), `unknown I/O priority class ${JSON.stringify(cls)} (expected one of ${IOPRIO_CLASSES.join(', ')})`);
  }
  readInteger(issues, childPath(base, 'priority'), o.priority, { min: 0, max: 7 });
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not set I/O priority yet');
}

/**
 * Check `process.scheduler` (runc's validate.scheduler): policy required and known; nice -20..19;
 * priority only for SCHED_FIFO/SCHED_RR; runtime/deadline/period only for SCHED_DEADLINE; known flags.
 */
export function checkScheduler(issues: Issues, raw: unknown): void {
  const base = 'process.scheduler';
  const o = readObject(issues, base, raw);
  if (o === undefined) return;
  const before = issues.errorCount;
  const pp = childPath(base, 'policy');
  const policy = readString(issues, pp, o.policy);
  if (policy === undefined || policy === '') {
    if (policy === '' || o.policy === undefined || o.policy === null) issues.error(pp, 'required field is missing');
  } else if (!SCHED_POLICIES.includes(policy)) {
    issues.error(pp, `unknown scheduling policy ${JSON.stringify(policy)} (expected one of ${SCHED_POLICIES.join(', ')})`);
  }
  readInteger(issues, childPath(base, 'nice'), o.nice, { min: -20, max: 19 });
  const priority = readInteger(issues, childPath(base, 'priority'), o.priority, INT32);
  if (priority !== undefined && priority !== 0 && policy !== 'SCHED_FIFO' && policy !== 'SCHED_RR') {
    issues.error(childPath(base, 'priority'), 'can only be set for the SCHED_FIFO or SCHED_RR policy');
  }
  for (const k of ['runtime', 'deadline', 'period'] as const) {
    const v = readBigInteger(issues, childPath(base, k), o[k], 0n, UINT64_MAX);
    if (v !== undefined && v !== 0n && policy !== 'SCHED_DEADLINE') {
      issues.error(childPath(base, k), 'can only be set for the SCHED_DEADLINE policy');
    }
  }
  const flags = readStringArray(issues, childPath(base, 'flags'), o.flags) ?? [];
  flags.forEach((f, i) => {
    if (!SCHED_FLAGS.includes(f)) issues.error(indexPath(childPath(base, 'flags'), i), `unknown scheduler flag ${JSON.stringify(f)}`);
  });
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not set a scheduling policy yet');
}

/** Check `process.execCPUAffinity`: `initial` and `final` CPU lists such as "0-3,7". */
export function checkExecCpuAffinity(issues: Issues, raw: unknown): void {
  const base = 'process.execCPUAffinity';
  const o = readObject(issues, base, raw);
  if (o === undefined) return;
  const before = issues.errorCount;
  for (const k of ['initial', 'final'] as const) {
    const v = readString(issues, childPath(base, k), o[k]);
    if (v !== undefined && v !== '' && !CPU_LIST.test(v)) {
      issues.error(childPath(base, k), `invalid CPU list ${describeValue(v)} (expected e.g. "0-3,7")`);
    }
  }
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not set CPU affinity yet');
}

