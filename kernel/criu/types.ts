/**
 * The contract of cordon's CRIU layer (kernel/criu/): checkpoint (dump) and restore of a container's process
 * tree through CRIU's RPC (`criu swrk`), as libcontainer's criu_linux.go drives it. The options mirror runc's
 * checkpoint/restore flags; `notify` lets the caller run its own steps at CRIU's notify points.
 */

/** How CRIU treats the container's cgroups (runc --manage-cgroups-mode). */
export type CriuCgroupMode = 'soft' | 'full' | 'strict' | 'ignore';

/** A CRIU notify point (rpc.proto's criu_notify.script), answered before CRIU goes on. */
export type CriuNotifyScript = 'pre-dump' | 'post-dump' | 'network-lock' | 'network-unlock' | 'setup-namespaces' | 'post-setup-namespaces' | 'pre-restore' | 'post-restore' | 'pre-resume' | 'post-resume' | 'orphan-pts-master' | 'status-ready' | 'query-ext-files';

/** What both dump and restore take. */
export interface CriuCommonOptions {
  /** The criu binary (default: `criu` on PATH). */
  criu?: string;
  /** Directory of the images (must exist for dump; read for restore). */
  imagesDir: string;
  /** Directory of CRIU's log and work files (default imagesDir). */
  workDir?: string;
  /** CRIU's log file name inside workDir (dump.log / restore.log). */
  logFile?: string;
  tcpEstablished?: boolean;
  extUnixSk?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  manageCgroupsMode?: CriuCgroupMode;
  autoDedup?: boolean;
  /** Namespaces left empty (runc --empty-ns), e.g. ['network']. */
  emptyNs?: string[];
  /** External bind mounts: key (as CRIU names it: the mount point inside the container) → host path on restore. */
  externalMounts?: Array<{ key: string; value: string }>;
  /** Other `--external` items (namespaces joined by path: "net[INODE]:KEY"). */
  external?: string[];
  /** Cgroup roots to use on restore: controller → path (runc sets them from the container's cgroup paths). */
  cgroupRoots?: Array<{ controller?: string; path: string }>;
  /**
   * Called at each notify point CRIU reports; CRIU waits for it to resolve (reject to fail the operation).
   * `info.fd` comes with 'orphan-pts-master' only: the pty master CRIU passed (the callback owns it and must
   * close it; without a callback it is closed).
   */
  notify?: (script: CriuNotifyScript, info: { pid?: number; fd?: number }) => Promise<void> | void;
  /** CRIU's log level, 0-4 (default 4, as runc). */
  logLevel?: number;
  /**
   * How CRIU locks the network of a dumped net namespace (rpc.proto's network_lock; default 'nftables': hosts
   * without iptables are common, and the CRIU that scripts/criu.sh builds has nftables).
   */
  networkLock?: 'iptables' | 'nftables' | 'skip';
  /** Ask CRIU for the pty master of an orphaned pts (runc always does; default true). */
  orphanPtsMaster?: boolean;
  /**
   * Let CRIU stop the parasite code with x86 hardware breakpoints (its default). Default false: on virtual
   * machines whose debug registers never fire (measured on this project's machines) CRIU then waits forever
   * ("Waiting for PID to trap"); cordon runs criu with CRIU_FAULT=130 (FI_NO_BREAKPOINTS), CRIU's
   * PTRACE_SYSCALL path, which works everywhere and costs a few stops more.
   */
  hwBreakpoints?: boolean;
  /** Kill criu and fail when the operation has not ended after this many ms (default 120000). */
  timeoutMs?: number;
}

/** Options of a checkpoint. */
export interface CriuDumpOptions extends CriuCommonOptions {
  /** The container's init (host pid): its whole tree is dumped. */
  pid: number;
  /** Keep it running after the dump (runc --leave-running). */
  leaveRunning?: boolean;
  /** The container's root on the host (runc passes the rootfs as root). */
  root: string;
  /** A freezer cgroup (v1 directory or v2 cgroup) CRIU freezes the tree with instead of ptrace-seizing it task by task. */
  freezeCgroup?: string;
}

/** Options of a restore. */
export interface CriuRestoreOptions extends CriuCommonOptions {
  /** The rootfs to restore into (CRIU's root). */
  root: string;
  /**
   * Restore detached (the restored tree's parent is the caller: rst_sibling). Default true, as runc always
   * sets rst_sibling: the caller then reaps the restored init (a child it did not spawn through Node).
   */
  detached?: boolean;
  /** Devices whose paths moved are found by device number (runc sets it on restore; default true). */
  evasiveDevices?: boolean;
  /** Fds CRIU should give the restored tree as its inherited stdio (inherit_fd: key → fd passed to criu). */
  inheritFds?: Array<{ key: string; fd: number }>;
}

/** What a restore reports. */
export interface CriuRestoreResult {
  /** Host pid of the restored init. */
  pid: number;
}

/** CRIU's version (criu_version). */
export interface CriuVersion {
  major: number;
  minor: number;
  sublevel?: number;
  gitid?: string;
  /** "4.1.1". */
  text: string;
}

/** Options of the version and check requests. */
export interface CriuServiceOptions {
  /** The criu binary (default: `criu` on PATH). */
  criu?: string;
  /** Check only: the directory of check.log (default: a temporary one, removed afterwards). */
  workDir?: string;
}
