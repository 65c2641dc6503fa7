/**
 * bpf(2) for the cgroup v2 device controller, through libc's syscall(): load a BPF_PROG_TYPE_CGROUP_DEVICE
 * program, attach it to (or detach it from) a cgroup directory, list the programs attached there.
 */
import { C, KernelError, allocNative, freeNative, koffi, lastErrno } from '../../sys/libc.js';
import { SYS } from '../../sys/numbers.js';

const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_DETACH = 9;
const BPF_PROG_GET_FD_BY_ID = 13;
const BPF_PROG_QUERY = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
/** Attach flags. */
export const BPF_F_ALLOW_MULTI = 2;
const ATTR_SIZE = 128;

function bpf(cmd: number, attr: bigint, op: string, path?: string): number {
  const r = Number(C.syscall(SYS.bpf, 'int', cmd, 'void *', attr, 'uint', ATTR_SIZE));
  if (r < 0) throw new KernelError(op, lastErrno(), path);
  return r;
}

/** Native memory holding `data` (freed by the caller with freeNative). */
function native(data: Buffer): bigint {
  const m = allocNative(Math.max(data.length, 1));
  data.copy(m.view);
  return m.ptr;
}

/**
 * Load a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd. On failure the verifier's log is loaded too
 * and put in the error.
 */
export function loadDeviceProgram(bytes: Buffer, license: string): number {
  const insns = native(bytes);
  const lic = native(Buffer.from(`${license}\0`));
  const attr = allocNative(ATTR_SIZE);
  const logSize = 65536;
  const log = allocNative(logSize);
  try {
    const fill = (withLog: boolean) => {
      attr.view.fill(0);
      attr.view.writeUInt32LE(BPF_PROG_TYPE_CGROUP_DEVICE, 0);
      attr.view.writeUInt32LE(bytes.length / 8, 4);
      attr.view.writeBigUInt64LE(insns, 8);
      attr.view.writeBigUInt64LE(lic, 16);
      if (withLog) {
        attr.view.writeUInt32LE(1, 24);
        attr.view.writeUInt32LE(logSize, 28);
        attr.view.writeBigUInt64LE(log.ptr, 32);
      }
    };
    fill(false);
    const fd = Number(C.syscall(SYS.bpf, 'int', BPF_PROG_LOAD, 'void *', attr.ptr, 'uint', ATTR_SIZE));
    if (fd >= 0) return fd;
    const errno = lastErrno();
    fill(true);
    C.syscall(SYS.bpf, 'int', BPF_PROG_LOAD, 'void *', attr.ptr, 'uint', ATTR_SIZE);
    const text = (koffi.decode(log.ptr, 'char', -1) as string).trim();
    throw new KernelError('bpf(BPF_PROG_LOAD)', errno, undefined, text ? `(verifier: ${text.slice(0, 400)})` : undefined);
  } finally {
    freeNative(insns);
    freeNative(lic);
    freeNative(attr.ptr);
    freeNative(log.ptr);
  }
}

function attachAttr(targetFd: number, progFd: number, flags: number): { ptr: bigint } {
  const a = allocNative(ATTR_SIZE);
  const v = a.view;
  v.writeUInt32LE(targetFd, 0);
  v.writeUInt32LE(progFd, 4);
  v.writeUInt32LE(BPF_CGROUP_DEVICE, 8);
  v.writeUInt32LE(flags, 12);
  return a;
}

/** BPF_PROG_ATTACH (BPF_CGROUP_DEVICE) of `progFd` to the cgroup directory `dirFd`. */
export function attachDeviceProgram(dirFd: number, progFd: number, flags: number, dir?: string): void {
  const a = attachAttr(dirFd, progFd, flags);
  try {
    bpf(BPF_PROG_ATTACH, a.ptr, 'bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)', dir);
  } finally {
    freeNative(a.ptr);
  }
}

/** BPF_PROG_DETACH of one program from the cgroup directory `dirFd`. */
export function detachDeviceProgram(dirFd: number, progFd: number, dir?: string): void {
  const a = attachAttr(dirFd, progFd, 0);
  try {
    bpf(BPF_PROG_DETACH, a.ptr, 'bpf(BPF_PROG_DETACH, BPF_CGROUP_DEVICE)', dir);
  } finally {
    freeNative(a.ptr);
  }
}

/** Ids of the device programs attached directly to the cgroup directory `dirFd` (BPF_PROG_QUERY). */
export function queryDevicePrograms(dirFd: number, dir?: string): number[] {
  const max = 64;
  const ids = allocNative(max * 4);
  const a = allocNative(ATTR_SIZE);
  try {
    const v = a.view;
    v.writeUInt32LE(dirFd, 0);
    v.writeUInt32LE(BPF_CGROUP_DEVICE, 4);
    v.writeBigUInt64LE(ids.ptr, 16);
    v.writeUInt32LE(max, 24);
    bpf(BPF_PROG_QUERY, a.ptr, 'bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE)', dir);
    const count = Math.min(v.readUInt32LE(24), max);
    return Array.from({ length: count }, (_, i) => ids.view.readUInt32LE(i * 4));
  } finally {
    freeNative(ids.ptr);
    freeNative(a.ptr);
  }
}

/** An fd for the loaded BPF program with this id (BPF_PROG_GET_FD_BY_ID). */
export function programFdById(id: number): number {
  const a = allocNative(ATTR_SIZE);
  try {
    a.view.writeUInt32LE(id, 0);
    return bpf(BPF_PROG_GET_FD_BY_ID, a.ptr, 'bpf(BPF_PROG_GET_FD_BY_ID)');
  } finally {
    freeNative(a.ptr);
  }
}
