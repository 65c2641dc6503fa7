/**
 * The OCI runtime-spec config.json (versions 1.0.x to 1.2.x) as TypeScript types: the parts runc honours
 * on Linux. Field names and optionality follow specs-go; unknown properties are allowed and ignored.
 *
 * 64-bit integer fields are `Int64`: a JS number, or a bigint when the value is beyond 2^53 (as
 * {@link parseConfigJson} reads it).
 */

/** A 64-bit integer field: a number when it fits in 2^53, otherwise a bigint. */
export type Int64 = number | bigint;

/** A whole config.json. */
export interface OciSpec {
  /** Spec version the bundle follows (semver, 1.x). */
  ociVersion: string;
  /** The container's root filesystem. */
  root?: OciRoot;
  /** Mounts in addition to the root, in order. */
  mounts?: OciMount[];
  /** The container process. */
  process?: OciProcess;
  hostname?: string;
  /** Since spec 1.0.2. */
  domainname?: string;
  /** Lifecycle hooks. */
  hooks?: OciHooks;
  /** Arbitrary metadata (string to string). */
  annotations?: Record<string, string>;
  /** Linux-specific configuration. */
  linux?: OciLinux;
}

/** `root`: the root filesystem. */
export interface OciRoot {
  /** Rootfs path, absolute or relative to the bundle. */
  path: string;
  readonly?: boolean;
}

/** An id-mapping range (`linux.uidMappings[]`, `mounts[].uidMappings[]`). */
export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** `mounts[]`: one mount. */
export interface OciMount {
  /** Absolute path in the container (relative is deprecated and taken relative to "/"). */
  destination: string;
  /** Filesystem type ("bind" for a bind mount). */
  type?: string;
  /** Device, label or host path (binds: relative to the bundle). */
  source?: string;
  /** fstab-style options ("nosuid", "mode=755", "rbind", "rprivate", ...). */
  options?: string[];
  /** Id-mapped mount (spec 1.1+); not supported by cordon. */
  uidMappings?: OciIdMapping[];
  /** Id-mapped mount (spec 1.1+); not supported by cordon. */
  gidMappings?: OciIdMapping[];
}

/** `process.user`. */
export interface OciUser {
  uid: number;
  gid: number;
  /** Since spec 1.0.2. */
  umask?: number;
  additionalGids?: number[];
  /** Windows only; ignored. */
  username?: string;
}

/** `process.consoleSize`. */
export interface OciConsoleSize {
  height: number;
  width: number;
}

/** `process.capabilities`: capability names ("CAP_NET_RAW") per set. */
export interface OciCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

/** `process.rlimits[]`. */
export interface OciRlimit {
  /** "RLIMIT_NOFILE", ... */
  type: string;
  soft: Int64;
  hard: Int64;
}

/** `process.ioPriority` (spec 1.1+). */
export interface OciIoPriority {
  class: 'IOPRIO_CLASS_RT' | 'IOPRIO_CLASS_BE' | 'IOPRIO_CLASS_IDLE';
  priority: number;
}

/** `process.scheduler` (spec 1.1+): sched_setattr(2) parameters. */
export interface OciScheduler {
  /** SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE or SCHED_DEADLINE. */
  policy: string;
  nice?: number;
  priority?: number;
  /** SCHED_FLAG_* names. */
  flags?: string[];
  runtime?: Int64;
  deadline?: Int64;
  period?: Int64;
}

/** `process.execCPUAffinity` (spec 1.2+): CPU lists for the exec'd process. */
export interface OciCpuAffinity {
  initial?: string;
  final?: string;
}

/** `process`: the container process. */
export interface OciProcess {
  terminal?: boolean;
  consoleSize?: OciConsoleSize;
  user?: OciUser;
  args?: string[];
  /** Windows only; ignored. */
  commandLine?: string;
  /** "KEY=VALUE" strings. */
  env?: string[];
  /** Absolute working directory. */
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  /** -1000..1000. */
  oomScoreAdj?: number;
  selinuxLabel?: string;
  ioPriority?: OciIoPriority;
  scheduler?: OciScheduler;
  execCPUAffinity?: OciCpuAffinity;
}

/** One hook: a program run at a lifecycle point. */
export interface OciHook {
  /** Absolute path of the program. */
  path: string;
  /** Full argv, including argv[0]. */
  args?: string[];
  /** "KEY=VALUE" strings. */
  env?: string[];
  /** Seconds before the hook is killed; positive. */
  timeout?: number;
}

/** `hooks`: hook lists by lifecycle point. */
export interface OciHooks {
  /** Deprecated in favour of createRuntime/createContainer/startContainer. */
  prestart?: OciHook[];
  createRuntime?: OciHook[];
  createContainer?: OciHook[];
  startContainer?: OciHook[];
  poststart?: OciHook[];
  poststop?: OciHook[];
}

/** The namespace type names of the spec. */
export type OciNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

/** `linux.namespaces[]`. */
export interface OciNamespace {
  type: OciNamespaceType;
  /** Namespace file to join; absent or empty to create a new namespace. */
  path?: string;
}

/** `linux.timeOffsets.<clock>` (spec 1.1+). */
export interface OciTimeOffset {
  secs?: Int64;
  nanosecs?: number;
}

/** `linux.devices[]`: a device node to create. */
export interface OciDevice {
  /** c, b, u (unbuffered char, same as c) or p (fifo). */
  type: 'c' | 'b' | 'u' | 'p';
  path: string;
  major?: Int64;
  minor?: Int64;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** `linux.intelRdt`. */
export interface OciIntelRdt {
  closID?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
  enableCMT?: boolean;
  enableMBM?: boolean;
}

/** `linux.personality`. */
export interface OciPersonality {
  domain: 'LINUX' | 'LINUX32';
  flags?: string[];
}

/** `linux.seccomp`, kept loose: validated only for its basic shape and consumed elsewhere. */
export type OciSeccomp = Record<string, unknown>;

/** `linux.resources`, kept loose: consumed by the cgroup layer. */
export type OciResources = Record<string, unknown>;

/** `linux`: Linux-specific configuration. */
export interface OciLinux {
  namespaces?: OciNamespace[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  /** Clock offsets for a new time namespace, keyed "monotonic" / "boottime". */
  timeOffsets?: Record<string, OciTimeOffset>;
  devices?: OciDevice[];
  cgroupsPath?: string;
  resources?: OciResources;
  /** shared, rshared, slave, rslave, private, rprivate, unbindable, runbindable. */
  rootfsPropagation?: string;
  seccomp?: OciSeccomp;
  /** Sysctl name ("net.ipv4.ip_forward" or "net/ipv4/ip_forward") to value. */
  sysctl?: Record<string, string>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  intelRdt?: OciIntelRdt;
  personality?: OciPersonality;
}
