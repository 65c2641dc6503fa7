/**
 * Checkpoint and restore through CRIU's RPC (`criu swrk`), with the criu_opts libcontainer's criu_linux.go
 * sets: log level 4 and a log file in the work dir, manage_cgroups (+ mode), notify_scripts, orphan_pts_master,
 * the images and work dirs as fds; for restore also rst_sibling and evasive_devices. A failure is a
 * LifecycleError (SystemError) naming the operation and quoting the tail of CRIU's log.
 *
 * The images and work dir fds are fds of THIS process: criu swrk opens them as /proc/<peer pid>/fd/<n>, the
 * peer being the process that made the socketpair (cr-service.c's setup_opts_from_req). The inherit_fd fds,
 * on the contrary, are criu's own: they are handed to criu as its fds 4, 5, ...
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LifecycleError } from '../../errors/index.js';
import { runRpc, passedFd, type RpcResult } from './rpc.js';
import type { CriuOptsMessage, CriuReqMessage } from './proto.js';
import type { CriuCommonOptions, CriuDumpOptions, CriuNotifyScript, CriuRestoreOptions, CriuRestoreResult, CriuServiceOptions, CriuVersion } from './types.js';

/** clone(2) flags of the namespaces --empty-ns may name (runc allows "network"). */
const NS_FLAGS: Record<string, number> = {
  network: 0x40000000,
  net: 0x40000000,
  ipc: 0x08000000,
  uts: 0x04000000,
  mount: 0x00020000,
  mnt: 0x00020000,
  pid: 0x20000000,
  user: 0x10000000,
  cgroup: 0x02000000,
};

/**
 * CRIU's fault-injection switch FI_NO_BREAKPOINTS (criu/include/fault-injection.h: 130): compel stops the
 * parasite by PTRACE_SYSCALL instead of a hardware breakpoint, which never fires on some virtual machines.
 */
const NO_BREAKPOINTS = { CRIU_FAULT: '130' };

const CG_MODES = { soft: 'SOFT', full: 'FULL', strict: 'STRICT', ignore: 'IGNORE' } as const;
const LOCKS = { iptables: 'IPTABLES', nftables: 'NFTABLES', skip: 'SKIP' } as const;

/** The last lines of CRIU's log worth quoting: its "Error" lines near the end, else the last lines. */
export function criuLogTail(file: string, maxLines = 8): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 32768);
      const b = Buffer.alloc(len);
      fs.readSync(fd, b, 0, len, size - len);
      text = b.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    return `(no log: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  const lines = text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  if (!lines.length) return '(the log is empty)';
  const last = lines.slice(-60);
  const errors = last.filter((l) => /\bError\b|\bWarn\b.*fail/i.test(l));
  return (errors.length ? errors : last).slice(-maxLines).join('\n');
}

/** Open a directory for CRIU (O_RDONLY|O_DIRECTORY), naming the operation and errno when it cannot. */
function openDir(op: string, what: string, dir: string): number {
  try {
    return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LifecycleError('SystemError', `${op}: open ${what} ${JSON.stringify(dir)}: ${err.code ?? err.message}`, { cause: e, errno: err.errno === undefined ? undefined : -err.errno });
  }
}

/** The options dump and restore share, as criu_opts. */
function commonOpts(o: CriuCommonOptions, imagesFd: number, workFd: number, logFile: string, op: string): CriuOptsMessage {
  let emptyNs = 0;
  (o.emptyNs ?? []).forEach((ns, i) => {
    const flag = NS_FLAGS[ns];
    if (flag === undefined) throw new LifecycleError('ConfigInvalid', `${op}: emptyNs[${i}]: unknown namespace "${ns}"`, { field: `emptyNs[${i}]` });
    emptyNs |= flag;
  });
  const m: CriuOptsMessage = {
    images_dir_fd: imagesFd,
    work_dir_fd: workFd,
    log_level: o.logLevel ?? 4,
    log_file: logFile,
    manage_cgroups: true,
    notify_scripts: true,
    orphan_pts_master: o.orphanPtsMaster ?? true,
    shell_job: o.shellJob ?? false,
    tcp_established: o.tcpEstablished ?? false,
    ext_unix_sk: o.extUnixSk ?? false,
    file_locks: o.fileLocks ?? false,
    auto_dedup: o.autoDedup ?? false,
    network_lock: LOCKS[o.networkLock ?? 'nftables'],
  };
  if (emptyNs) m.empty_ns = emptyNs;
  if (o.manageCgroupsMode) m.manage_cgroups_mode = CG_MODES[o.manageCgroupsMode];
  if (o.external?.length) m.external = [...o.external];
  if (o.cgroupRoots?.length) m.cg_root = o.cgroupRoots.map((r) => (r.controller === undefined ? { path: r.path } : { ctrl: r.controller, path: r.path }));
  return m;
}

/** What one dump or restore needs from the caller, and what comes back. */
interface Operation {
  /** "criu dump of pid 123" — names the operation in every error. */
  op: string;
  type: 'DUMP' | 'RESTORE';
  options: CriuCommonOptions;
  defaultLog: string;
  build: (common: CriuOptsMessage) => CriuOptsMessage;
  passFds?: number[];
}

async function operate(x: Operation): Promise<RpcResult> {
  const o = x.options;
  const workDir = o.workDir ?? o.imagesDir;
  const logFile = o.logFile ?? x.defaultLog;
  if (logFile.includes('/')) throw new LifecycleError('ConfigInvalid', `${x.op}: logFile must be a file name inside workDir, got ${JSON.stringify(logFile)}`, { field: 'logFile' });
  const imagesFd = openDir(x.op, 'images dir', o.imagesDir);
  let workFd = -1;
  try {
    if (o.workDir !== undefined) fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
    workFd = openDir(x.op, 'work dir', workDir);
    const request: CriuReqMessage = { type: x.type, opts: x.build(commonOpts(o, imagesFd, workFd, logFile, x.op)) };
    const notify = o.notify;
    const result = await runRpc({
      criu: o.criu ?? 'criu',
      request,
      passFds: x.passFds,
      env: o.hwBreakpoints ? {} : NO_BREAKPOINTS,
      timeoutMs: o.timeoutMs ?? 120_000,
      onNotify: async (n) => {
        if (!notify) {
          if (n.fd !== undefined) fs.closeSync(n.fd);
          return;
        }
        const info: { pid?: number; fd?: number } = {};
        if (n.pid !== undefined) info.pid = n.pid;
        if (n.fd !== undefined) info.fd = n.fd;
        await notify(n.script as CriuNotifyScript, info);
      },
    }).catch((e: unknown) => {
      throw new LifecycleError('SystemError', `${x.op}: cannot run criu: ${(e as Error).message}`, { cause: e });
    });
    const r = result.response;
    if (r?.success) return result;
    throw failure(x.op, result, path.join(workDir, logFile));
  } finally {
    fs.closeSync(imagesFd);
    if (workFd >= 0) fs.closeSync(workFd);
  }
}

/** The error of a failed operation: what CRIU said (errno, message) or why the exchange broke, and its log's tail. */
function failure(op: string, r: RpcResult, logPath: string): LifecycleError {
  const parts: string[] = [];
  if (r.notifyError !== undefined) parts.push(`a notify callback failed: ${r.notifyError instanceof Error ? r.notifyError.message : String(r.notifyError)}`);
  if (r.response) {
    const errno = r.response.cr_errno ? ` (errno ${r.response.cr_errno})` : '';
    parts.push(`CRIU failed${errno}${r.response.cr_errmsg ? `: ${r.response.cr_errmsg}` : ''}`);
  } else {
    const how = r.exit.signal ? `killed by ${r.exit.signal}` : `exit code ${r.exit.code}`;
    parts.push(`${r.protocolError?.message ?? 'no final response from criu'} (criu ${how})`);
  }
  if (r.output) parts.push(`criu said: ${r.output}`);
  const message = `${op}: ${parts.join('; ')}\nlog ${logPath}:\n${criuLogTail(logPath)}`;
  const details: { cause?: unknown; errno?: number } = {};
  if (r.notifyError !== undefined) details.cause = r.notifyError;
  if (r.response?.cr_errno) details.errno = r.response.cr_errno;
  return new LifecycleError('SystemError', message, details);
}

/**
 * Checkpoint the process tree of `opts.pid` into `opts.imagesDir` (which must exist) through CRIU's RPC. The
 * tree is killed afterwards unless `leaveRunning`. Resolves when CRIU reports success; rejects with a
 * LifecycleError (SystemError) naming the operation and quoting CRIU's log (workDir/logFile, default dump.log).
 */
export async function criuDump(opts: CriuDumpOptions): Promise<void> {
  const op = `criu dump of pid ${opts.pid} (images ${opts.imagesDir})`;
  await operate({
    op,
    type: 'DUMP',
    options: opts,
    defaultLog: 'dump.log',
    build: (m) => {
      m.pid = opts.pid;
      m.root = opts.root;
      m.leave_running = opts.leaveRunning ?? false;
      // Dump: an external bind mount is named by its mount point in the container (key and value alike).
      if (opts.externalMounts?.length) m.ext_mnt = opts.externalMounts.map((e) => ({ key: e.key, val: e.value }));
      if (opts.freezeCgroup) m.freeze_cgroup = opts.freezeCgroup;
      return m;
    },
  });
}

/**
 * Restore a checkpoint from `opts.imagesDir` into `opts.root` through CRIU's RPC. With `detached` (the
 * default, as runc's rst_sibling) the restored init becomes a child of this process: the caller reaps it.
 * `inheritFds` fds of this process are passed to criu and given to the restored tree under their keys (e.g.
 * "pipe:[1234]" for a stdio pipe). Resolves with the restored init's host pid; rejects with a LifecycleError
 * (SystemError) naming the operation and quoting CRIU's log (default restore.log).
 */
export async function criuRestore(opts: CriuRestoreOptions): Promise<CriuRestoreResult> {
  const op = `criu restore (images ${opts.imagesDir}, root ${opts.root})`;
  const inherit = opts.inheritFds ?? [];
  const result = await operate({
    op,
    type: 'RESTORE',
    options: opts,
    defaultLog: 'restore.log',
    passFds: inherit.map((i) => i.fd),
    build: (m) => {
      m.root = opts.root;
      m.rst_sibling = opts.detached ?? true;
      m.evasive_devices = opts.evasiveDevices ?? true;
      if (opts.externalMounts?.length) m.ext_mnt = opts.externalMounts.map((e) => ({ key: e.key, val: e.value }));
      if (inherit.length) m.inherit_fd = inherit.map((i, n) => ({ key: i.key, fd: passedFd(n) }));
      return m;
    },
  });
  const pid = result.response?.restore?.pid;
  if (!pid) throw new LifecycleError('SystemError', `${op}: CRIU reported success without the restored pid`);
  return { pid };
}

/** CRIU's version, asked over its RPC (a VERSION request). */
export async function criuVersion(opts: CriuServiceOptions = {}): Promise<CriuVersion> {
  const r = await service(opts, 'VERSION', 'criu version');
  const v = r.response?.version;
  if (!r.response?.success || !v) throw failure('criu version', r, '(none)');
  const out: CriuVersion = { major: v.major_number, minor: v.minor_number, text: `${v.major_number}.${v.minor_number}${v.sublevel ? `.${v.sublevel}` : ''}` };
  if (v.sublevel !== undefined) out.sublevel = v.sublevel;
  if (v.gitid !== undefined) out.gitid = v.gitid;
  return out;
}

/**
 * Check that CRIU can checkpoint and restore on this kernel (a CHECK request: `criu check`). Its log,
 * check.log, goes to `opts.workDir` (default: a temporary directory, removed afterwards). Rejects with a
 * LifecycleError (SystemError) quoting that log.
 */
export async function criuCheck(opts: CriuServiceOptions = {}): Promise<void> {
  const op = 'criu check';
  const dir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-criu-check-'));
  try {
    const fd = openDir(op, 'work dir', dir);
    let r: RpcResult;
    try {
      r = await service(opts, 'CHECK', op, { images_dir_fd: fd, work_dir_fd: fd, log_file: 'check.log', log_level: 4 });
    } finally {
      fs.closeSync(fd);
    }
    if (!r.response?.success) throw failure(op, r, path.join(dir, 'check.log'));
  } finally {
    if (opts.workDir === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function service(opts: CriuServiceOptions, type: 'VERSION' | 'CHECK', op: string, criuOpts?: CriuOptsMessage): Promise<RpcResult> {
  try {
    return await runRpc({ criu: opts.criu ?? 'criu', request: criuOpts ? { type, opts: criuOpts } : { type }, timeoutMs: 60_000 });
  } catch (e) {
    throw new LifecycleError('SystemError', `${op}: cannot run criu: ${(e as Error).message}`, { cause: e });
  }
}
