/**
 * The cgroup layer's contract: the manager of one container's cgroups on any layout (v1, v2, hybrid) and the
 * stats it reports (libcontainer's Stats). The resources it applies are the config model's CgroupResources.
 */
import type { CgroupResources } from '../../config/model.js';

/** libcontainer's Stats, as a typed object. */
export interface CgroupStats {
  cpu: {
    usage: { total: bigint; percpu: bigint[]; user: bigint; kernel: bigint };
    throttling: { periods: bigint; throttledPeriods: bigint; throttledTime: bigint };
  };
  memory: {
    usage: MemoryEntry;
    swap: MemoryEntry;
    kernel: MemoryEntry;
    kernelTCP: MemoryEntry;
    cache: bigint;
    rss: bigint;
    /** memory.stat (v1) or memory.stat (v2) key/values. */
    stats: Record<string, bigint>;
  };
  pids: { current: bigint; limit: bigint };
  blkio: {
    ioServiceBytesRecursive: BlkioEntry[];
    ioServicedRecursive: BlkioEntry[];
  };
  hugetlb: Record<string, { usage: bigint; maxUsage: bigint; failcnt: bigint }>;
}

/** usage / max usage / failcnt / limit of one memory counter. */
export interface MemoryEntry {
  usage: bigint;
  maxUsage: bigint;
  failcnt: bigint;
  limit: bigint;
}

/** One blkio/io counter line. */
export interface BlkioEntry {
  major: number;
  minor: number;
  op: string;
  value: bigint;
}

/** The cgroups of one container, on whatever layout the host has. */
export interface CgroupManager {
  /** Absolute directory per controller ("memory", "cpu", ..., "unified" for the v2 hierarchy). */
  readonly paths: Readonly<Record<string, string>>;
  /**
   * Directories create() made, parents first (a cgroupsPath "/a/b" may create "a" too). Record them next to
   * `paths` and pass them to openCgroupManager so a later destroy also removes the ancestors created here;
   * without them destroy removes only the container's own directories.
   */
  readonly created?: readonly string[];
  /** Create the directories (every controller); throws CgroupError naming the path. */
  create(): void;
  /** Write resources (create and update); throws CgroupError naming the resource and the file. */
  apply(resources: CgroupResources): void;
  /** Move a process into every controller's cgroup. */
  join(pid: number): void;
  /** The same without blocking the event loop (writes through the threadpool, in the same order). */
  joinAsync(pid: number): Promise<void>;
  /**
   * What a new process needs to join every cgroup by itself: each v1 hierarchy's `tasks` file (a thread
   * writing "0" there skips the kernel's global threadgroup lock) and the v2 directory (clone3 CLONE_INTO_CGROUP).
   */
  joinTargets(): CgroupJoinTargets;
  /** Freeze every process (resolves once the kernel reports frozen). */
  freeze(): Promise<void>;
  /** Thaw. */
  thaw(): Promise<void>;
  /** True while frozen. */
  isFrozen(): boolean;
  /** Host pids of every process in the cgroup (recursive). */
  pids(): number[];
  /** Current statistics. */
  stats(): CgroupStats;
  /** Number of OOM kills so far (memory.events oom_kill on v2, memory.oom_control oom_kill on v1). */
  oomKillCount(): number;
  /** Call `onOom` on every OOM event until the returned function is called (eventfd on v1, memory.events on v2). */
  watchOom(onOom: () => void): () => void;
  /** Send a signal to every process in the cgroup (kill --all, delete --force). */
  signalAll(signal: number): void;
  /** Remove every directory created (waits for it to empty); throws CgroupError naming what stays. */
  destroy(): Promise<void>;
}

/** Files a new process joins its cgroups through (see CgroupManager.joinTargets). */
export interface CgroupJoinTargets {
  /** v1 hierarchies, each distinct directory once in join order: a name for messages and its `tasks` file. */
  tasks: Array<{ name: string; path: string }>;
  /** The cgroup v2 directory, if there is one. */
  unified?: string;
}
