/**
 * `linux.seccomp` → the config model's SeccompProfile: every action, operator, architecture and flag
 * checked by name against config/linux/seccomp-tables.ts (an unknown one is an error naming its JSON path),
 * and no seccomp at all when the object is absent or empty. Syscall names are checked against a resolver
 * the caller injects (the kernel's libseccomp lookup on the create path): an unknown one is skipped with a
 * warning (runc's rule). Without a resolver names are kept as given, and the kernel's filter compile skips
 * what libseccomp cannot resolve; no native code is loaded here either way.
 */
import { SECCOMP_ACTIONS, SECCOMP_ARCHITECTURES, SECCOMP_FILTER_FLAGS, SECCOMP_OPS } from './linux/seccomp-tables.js';
import type { SeccompActionName, SeccompArg, SeccompOp, SeccompProfile, SeccompRule } from './model.js';
import { UINT32, UINT64_MAX, describeValue, readArray, readBigInteger, readInteger, readObject, readString, readStringArray } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** OCI architecture name ("SCMP_ARCH_X86_64") → libseccomp's ("x86_64"). */
export function libseccompArchName(oci: string): string {
  return oci.replace(/^SCMP_ARCH_/, '').toLowerCase();
}

function readAction(issues: Issues, p: string, raw: unknown): SeccompActionName | undefined {
  const a = readString(issues, p, raw);
  if (a === undefined) {
    if (raw === undefined || raw === null) issues.error(p, 'required field is missing');
    return undefined;
  }
  if (!(SECCOMP_ACTIONS as readonly string[]).includes(a)) {
    issues.error(p, `unknown seccomp action ${JSON.stringify(a)}`);
    return undefined;
  }
  return a as SeccompActionName;
}

function readArgs(issues: Issues, p: string, raw: unknown): SeccompArg[] {
  const out: SeccompArg[] = [];
  (readArray(issues, p, raw) ?? []).forEach((arg, j) => {
    const ap = indexPath(p, j);
    const a = readObject(issues, ap, arg);
    if (a === undefined) return;
    const index = readInteger(issues, childPath(ap, 'index'), a.index, { min: 0, max: 5 });
    if (index === undefined && (a.index === undefined || a.index === null)) issues.error(childPath(ap, 'index'), 'required field is missing');
    const value = readBigInteger(issues, childPath(ap, 'value'), a.value, 0n, UINT64_MAX);
    const valueTwo = readBigInteger(issues, childPath(ap, 'valueTwo'), a.valueTwo, 0n, UINT64_MAX) ?? 0n;
    const op = readString(issues, childPath(ap, 'op'), a.op);
    if (op === undefined) {
      if (a.op === undefined || a.op === null) issues.error(childPath(ap, 'op'), 'required field is missing');
      return;
    }
    if (!(op in SECCOMP_OPS)) {
      issues.error(childPath(ap, 'op'), `unknown seccomp operator ${JSON.stringify(op)}`);
      return;
    }
    if (index !== undefined) out.push({ index, value: value ?? 0n, valueTwo, op: op as SeccompOp });
  });
  return out;
}

/**
 * Syscalls the container's init makes between loading the filter and handing the listener fd over (report and
 * gate pipes, the hand-off itself): notifying them would wait forever for a listener that has no fd yet.
 */
const RUNTIME_SYSCALLS = ['write', 'read', 'sendmsg'];

/**
 * Validate and convert `linux.seccomp`; undefined when seccomp is off.
 *
 * @param knownSyscall - tells whether a syscall name exists (kernel/index.ts's `knownSyscall`); when given,
 *   unknown names draw a warning and are dropped from their rule, as runc does; when absent, names are kept
 */
export function convertSeccomp(issues: Issues, raw: unknown, knownSyscall?: (name: string) => boolean): SeccompProfile | undefined {
  const base = 'linux.seccomp';
  const s = readObject(issues, base, raw);
  if (s === undefined) return undefined;
  const syscalls = readArray(issues, childPath(base, 'syscalls'), s.syscalls) ?? [];
  if (s.defaultAction === undefined && syscalls.length === 0) return undefined;
  const defaultAction = readAction(issues, childPath(base, 'defaultAction'), s.defaultAction);
  if (defaultAction === 'SCMP_ACT_NOTIFY') issues.error(childPath(base, 'defaultAction'), 'SCMP_ACT_NOTIFY cannot be the default action (the runtime\'s own syscalls after loading the filter would wait for a listener that has no fd yet)');
  const defaultErrnoRet = readInteger(issues, childPath(base, 'defaultErrnoRet'), s.defaultErrnoRet, UINT32);
  const architectures: string[] = [];
  (readStringArray(issues, childPath(base, 'architectures'), s.architectures) ?? []).forEach((a, i) => {
    const name = libseccompArchName(a);
    if (!a.startsWith('SCMP_ARCH_') || !SECCOMP_ARCHITECTURES.has(name)) issues.error(indexPath(childPath(base, 'architectures'), i), `unknown seccomp architecture ${JSON.stringify(a)}`);
    else architectures.push(name);
  });
  const flags: string[] = [];
  (readStringArray(issues, childPath(base, 'flags'), s.flags) ?? []).forEach((f, i) => {
    if (!(f in SECCOMP_FILTER_FLAGS) || f === 'SECCOMP_FILTER_FLAG_NEW_LISTENER' || f === 'SECCOMP_FILTER_FLAG_TSYNC') {
      issues.error(indexPath(childPath(base, 'flags'), i), `unsupported seccomp flag ${JSON.stringify(f)} (supported: SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)`);
    } else flags.push(f);
  });
  const listenerPath = readString(issues, childPath(base, 'listenerPath'), s.listenerPath);
  const listenerMetadata = readString(issues, childPath(base, 'listenerMetadata'), s.listenerMetadata);
  if (listenerPath !== undefined && !listenerPath.startsWith('/')) issues.error(childPath(base, 'listenerPath'), 'must be an absolute path');
  const rules: SeccompRule[] = [];
  syscalls.forEach((entry, i) => {
    const p = indexPath(childPath(base, 'syscalls'), i);
    const c = readObject(issues, p, entry);
    if (c === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const names = readStringArray(issues, childPath(p, 'names'), c.names);
    if (names === undefined) {
      if (c.names === undefined || c.names === null) issues.error(childPath(p, 'names'), 'required field is missing');
      return;
    }
    if (names.length === 0) issues.error(childPath(p, 'names'), 'must have at least one element');
    const action = readAction(issues, childPath(p, 'action'), c.action);
    const errnoRet = readInteger(issues, childPath(p, 'errnoRet'), c.errnoRet, UINT32);
    const args = readArgs(issues, childPath(p, 'args'), c.args);
    if (action === 'SCMP_ACT_NOTIFY') {
      names.forEach((n, j) => {
        if (RUNTIME_SYSCALLS.includes(n)) issues.error(indexPath(childPath(p, 'names'), j), `SCMP_ACT_NOTIFY cannot be used for ${JSON.stringify(n)}: the runtime itself calls it after loading the filter, before the listener has its fd`);
      });
    }
    if (knownSyscall) {
      names.forEach((n, j) => {
        if (!knownSyscall(n)) issues.warn(indexPath(childPath(p, 'names'), j), `unknown syscall ${JSON.stringify(n)} skipped`);
      });
    }
    if (action !== undefined) rules.push({ names: knownSyscall ? names.filter(knownSyscall) : names, action, errnoRet, args, field: p });
  });
  const usesNotify = defaultAction === 'SCMP_ACT_NOTIFY' || rules.some((r) => r.action === 'SCMP_ACT_NOTIFY');
  if (usesNotify && !listenerPath) issues.error(childPath(base, 'listenerPath'), 'required when SCMP_ACT_NOTIFY is used');
  if (defaultAction === undefined) return undefined;
  const profile: SeccompProfile = { defaultAction, architectures, flags, rules };
  if (defaultErrnoRet !== undefined) profile.defaultErrnoRet = defaultErrnoRet;
  if (listenerPath !== undefined) profile.listenerPath = listenerPath;
  if (listenerMetadata !== undefined) profile.listenerMetadata = listenerMetadata;
  return profile;
}
