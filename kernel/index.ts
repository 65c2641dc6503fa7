/**
 * kernel/: Linux through koffi. This index is the only surface the layers above (actors/, cli/, bench/, and
 * tests other than those of kernel internals) import: typed functions and classes, no xstate, no NATS, no
 * event log. Native libraries other than libc load on first use, so importing this costs what libc's
 * binding costs. The folders: sys/ (libc, ABI, numbers), spawn/, process/, container/, rootfs/, seccomp/,
 * net/, io/, cgroups/ (v1/, v2/), criu/.
 */

// Containers and processes
export { spawnContainer, type ContainerInit, type ContainerSpawnOptions, type StartBreakdown } from './container/container.js';
export { spawnExec, type ExecTarget, type ExecOptions, type ExecSpawn } from './container/exec.js';
export { SetupError } from './container/container-plan.js';
export {
  type ExitStatus,
  exitCodeOf,
  isNoSuchProcess,
  isSameProcess,
  openPidfd,
  pidfdSignal,
  parentPid,
  processStartTime,
  reapZombieChild,
  waitPidfd,
} from './process/pidfd.js';
export { NAMESPACE_PROC_NAMES } from './container/namespaces.js';
export { runHook, HookError, type HookPlace, type HookSpec } from './process/hooks.js';

// Seccomp: the syscall-name check config/ takes as a resolver, and a user-notification agent (listenerPath)
export { knownSyscall } from './seccomp/seccomp.js';
export {
  SeccompNotifyListener,
  type ContainerProcessState,
  type SeccompNotification,
  type SeccompNotifyHandler,
  type SeccompNotifyOptions,
  type SeccompNotifyResponse,
  type SeccompNotifySession,
} from './seccomp/seccomp-notify.js';

// Errors and Linux numbers
export { KernelError, errnoName } from './sys/libc.js';
export { O } from './sys/flags.js';
export { SIGNALS, parseSignal, signalName } from './process/signals.js';
export { capabilityNumber } from '../config/linux/capability-names.js';

// Files, sockets, terminals
export { mkfifo, closeFd, watchReadable, pollFd, POLL, type ReadableWatch } from './io/fd.js';
export { tryFileLock, unlockFile, withFileLock } from './io/file-lock.js';
export { acceptUnix, connectUnix, listenUnix, peerHungUp, recvFds, sendFds } from './io/unix-socket.js';
export { pumpPty, setWindowSize, windowSize } from './io/pty.js';

// Checkpoint and restore through CRIU's RPC (criu swrk)
export { criuDump, criuRestore, criuVersion, criuCheck, criuLogTail } from './criu/criu.js';
export type {
  CriuCgroupMode,
  CriuCommonOptions,
  CriuDumpOptions,
  CriuNotifyScript,
  CriuRestoreOptions,
  CriuRestoreResult,
  CriuServiceOptions,
  CriuVersion,
} from './criu/types.js';

// Networks
export { setupVeth, removeVeth } from './net/veth.js';

// Cgroups
export { createCgroupManager, openCgroupManager } from './cgroups/manager.js';
export type { BlkioEntry, CgroupManager, CgroupStats, MemoryEntry } from './cgroups/types.js';

// The config model types the kernel takes (defined in config/model.ts, the bottom layer)
export type { CgroupResources, VethSetup } from '../config/model.js';
