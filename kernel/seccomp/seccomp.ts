/**
 * Seccomp filters through libseccomp (libseccomp.so.2 via koffi): the parent builds the filter from a
 * typed profile and exports it as classic BPF; the child loads that program with seccomp(2) as a plain
 * chain step, so it stays libc-only. Loaded filters are cached by profile, since building one costs
 * hundreds of libseccomp calls.
 */
import fs from 'node:fs';
import type { Blob, FdRef } from '../spawn/spawn-plan.js';
import type { ChildSteps } from '../spawn/child-steps.js';
import { koffi, libc } from '../sys/libc.js';
import { ERRNO, SCMP_UNRESOLVED, SYS } from '../sys/numbers.js';
import type { SeccompActionName, SeccompArg, SeccompProfile } from '../../config/model.js';
import { SECCOMP_FILTER_FLAGS, SECCOMP_OPS } from '../../config/linux/seccomp-tables.js';

/** A filter ready to load in the child. */
export interface CompiledFilter {
  /** Classic BPF program (struct sock_filter[]). */
  bpf: Buffer;
  /** Flags for seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). */
  flags: number;
  /** True when the profile uses SCMP_ACT_NOTIFY (the load returns a listener fd). */
  notify: boolean;
  /** Syscall names libseccomp does not know, skipped as runc does. */
  skipped: string[];
}

/** libseccomp's 32-bit encoding of an action (errnoRet defaults to EPERM for ERRNO, as runc). */
export function actionValue(a: SeccompActionName, errnoRet?: number): number {
  switch (a) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return 0x00000000;
    case 'SCMP_ACT_KILL_PROCESS':
      return 0x80000000;
    case 'SCMP_ACT_TRAP':
      return 0x00030000;
    case 'SCMP_ACT_ERRNO':
      return 0x00050000 | ((errnoRet ?? ERRNO.EPERM) & 0xffff);
    case 'SCMP_ACT_TRACE':
      return 0x7ff00000 | ((errnoRet ?? ERRNO.EPERM) & 0xffff);
    case 'SCMP_ACT_LOG':
      return 0x7ffc0000;
    case 'SCMP_ACT_NOTIFY':
      return 0x7fc00000;
    case 'SCMP_ACT_ALLOW':
      return 0x7fff0000;
  }
}

interface Libseccomp {
  init: (def: number) => unknown;
  release: (ctx: unknown) => void;
  archAdd: (ctx: unknown, token: number) => number;
  archResolve: (name: string) => number;
  archNative: () => number;
  resolveName: (name: string) => number;
  ruleAddArray: (ctx: unknown, action: number, nr: number, n: number, args: Buffer | null) => number;
  exportBpf: (ctx: unknown, fd: number) => number;
  attrSet: (ctx: unknown, attr: number, value: number) => number;
  memfdCreate: (name: string, flags: number) => number;
}

let lib: Libseccomp | undefined;

/** Load libseccomp once; throws a clear error when it is missing. */
function libseccomp(): Libseccomp {
  if (lib) return lib;
  let l: ReturnType<typeof koffi.load>;
  try {
    l = koffi.load('libseccomp.so.2');
  } catch (e) {
    throw new Error(`linux.seccomp: libseccomp.so.2 cannot be loaded (${(e as Error).message}); install the libseccomp2 package`);
  }
  const c = libc;
  lib = {
    init: l.func('void *seccomp_init(uint32_t def_action)'),
    release: l.func('void seccomp_release(void *ctx)'),
    archAdd: l.func('int seccomp_arch_add(void *ctx, uint32_t arch_token)'),
    archResolve: l.func('uint32_t seccomp_arch_resolve_name(const char *name)'),
    archNative: l.func('uint32_t seccomp_arch_native()'),
    resolveName: l.func('int seccomp_syscall_resolve_name(const char *name)'),
    ruleAddArray: l.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, const void *arg_array)'),
    exportBpf: l.func('int seccomp_export_bpf(void *ctx, int fd)'),
    attrSet: l.func('int seccomp_attr_set(void *ctx, int attr, uint32_t value)'),
    memfdCreate: c.func('int memfd_create(const char *name, unsigned int flags)'),
  } as unknown as Libseccomp;
  return lib;
}

/** libseccomp's token of an architecture name ("x86_64"), or undefined when it does not know it. */
export function archToken(name: string): number | undefined {
  const t = libseccomp().archResolve(name);
  return t === 0 ? undefined : t >>> 0;
}

/** True when libseccomp knows the syscall name (on any architecture). */
export function knownSyscall(name: string): boolean {
  return !SCMP_UNRESOLVED.includes(libseccomp().resolveName(name));
}

const SCMP_FLTATR_CTL_NNP = 3;
const SCMP_FLTATR_API_TSKIP = 5;
const MFD_CLOEXEC = 1;
const cache = new Map<string, CompiledFilter>();

/** Build (or take from the cache) the BPF program of a profile. Errors name the JSON path. */
export function compileSeccomp(p: SeccompProfile): CompiledFilter {
  const key = JSON.stringify(p, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  const hit = cache.get(key);
  if (hit) return hit;
  const s = libseccomp();
  const defaultAction = actionValue(p.defaultAction, p.defaultErrnoRet);
  const ctx = s.init(defaultAction);
  if (!ctx) throw new Error('linux.seccomp: seccomp_init failed');
  const skipped: string[] = [];
  let notify = p.defaultAction === 'SCMP_ACT_NOTIFY';
  try {
    s.attrSet(ctx, SCMP_FLTATR_CTL_NNP, 0);
    s.attrSet(ctx, SCMP_FLTATR_API_TSKIP, 1);
    p.architectures.forEach((name, i) => {
      const t = archToken(name);
      if (t === undefined) throw new Error(`linux.seccomp.architectures[${i}]: unknown architecture ${JSON.stringify(name)}`);
      const r = s.archAdd(ctx, t);
      if (r !== 0 && r !== -ERRNO.EEXIST /* the native one */) throw new Error(`linux.seccomp.architectures[${i}]: seccomp_arch_add(${name}) failed: ${r}`);
    });
    for (const rule of p.rules) {
      const action = actionValue(rule.action, rule.errnoRet);
      if (action === defaultAction) continue; // libseccomp refuses a rule equal to the default; runc skips it too
      if (rule.action === 'SCMP_ACT_NOTIFY') notify = true;
      for (const name of rule.names) {
        const nr = s.resolveName(name);
        // The names knownSyscall refuses (a profile validated without it still has them): skipped, as runc does.
        if (SCMP_UNRESOLVED.includes(nr)) {
          skipped.push(name);
          continue;
        }
        for (const args of argGroups(rule.args)) {
          const buf = args.length ? argArray(args) : null;
          const r = s.ruleAddArray(ctx, action, nr, args.length, buf);
          if (r !== 0) throw new Error(`${rule.field}: seccomp_rule_add(${name}) failed: errno ${-r}`);
        }
      }
    }
    const fd = s.memfdCreate('cordon-seccomp', MFD_CLOEXEC);
    if (fd < 0) throw new Error('linux.seccomp: memfd_create failed');
    try {
      const r = s.exportBpf(ctx, fd);
      if (r !== 0) throw new Error(`linux.seccomp: seccomp_export_bpf failed: ${r}`);
      const size = fs.fstatSync(fd).size;
      const bpf = Buffer.alloc(size);
      fs.readSync(fd, bpf, 0, size, 0);
      let flags = 0;
      for (const f of p.flags) flags |= SECCOMP_FILTER_FLAGS[f] ?? 0;
      if (notify) flags |= SECCOMP_FILTER_FLAGS.SECCOMP_FILTER_FLAG_NEW_LISTENER;
      const out: CompiledFilter = { bpf, flags, notify, skipped };
      if (cache.size > 64) cache.clear();
      cache.set(key, out);
      return out;
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    s.release(ctx);
  }
}

/**
 * runc's rule: conditions on distinct arguments are ANDed in one rule; when one argument has several
 * conditions, each condition becomes a rule of its own (ORed), since libseccomp cannot AND them.
 */
function argGroups(args: SeccompArg[]): SeccompArg[][] {
  if (args.length === 0) return [[]];
  const indexes = new Set(args.map((a) => a.index));
  return indexes.size === args.length ? [args] : args.map((a) => [a]);
}

/** struct scmp_arg_cmp[] { unsigned arg; enum op; u64 datum_a; u64 datum_b }. */
function argArray(args: SeccompArg[]): Buffer {
  const b = Buffer.alloc(24 * args.length);
  args.forEach((a, i) => {
    b.writeUInt32LE(a.index, 24 * i);
    b.writeUInt32LE(SECCOMP_OPS[a.op], 24 * i + 4);
    b.writeBigUInt64LE(BigInt.asUintN(64, a.value), 24 * i + 8);
    b.writeBigUInt64LE(BigInt.asUintN(64, a.valueTwo), 24 * i + 16);
  });
  return b;
}

const SECCOMP_SET_MODE_FILTER = 1;

/**
 * Child steps that load a compiled filter with seccomp(2). With a notify listener, the returned listener
 * fd is sent over `notifySocket` (SCM_RIGHTS) to the parent, which hands it to the listener.
 */
export function loadSeccompSteps(s: ChildSteps, f: CompiledFilter, notifySocket?: FdRef): void {
  const fprog = {
    struct: (blob: Blob) => {
      const prog = blob.add(f.bpf);
      const hdr = Buffer.alloc(16);
      hdr.writeUInt16LE(f.bpf.length / 8, 0);
      const at = blob.add(hdr);
      blob.pointer(at + 8, prog);
      return at;
    },
  };
  const label = `seccomp(SECCOMP_SET_MODE_FILTER, 0x${f.flags.toString(16)}, ${f.bpf.length / 8} instructions)`;
  if (!f.notify || !notifySocket) {
    s.sys(SYS.seccomp, [SECCOMP_SET_MODE_FILTER, f.flags, fprog], { field: 'linux.seccomp', label });
    return;
  }
  const listener = s.openPathLike('syscall', [SYS.seccomp, SECCOMP_SET_MODE_FILTER, f.flags, fprog], { field: 'linux.seccomp', label });
  s.sendFd(notifySocket, listener, { field: 'linux.seccomp.listenerPath', label: 'sendmsg(seccomp listener fd to the runtime)' });
  s.close(listener);
}
