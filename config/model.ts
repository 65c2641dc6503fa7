/**
 * The container config model: what the kernel layer needs to build a container, already validated and
 * translated from OCI names into Linux numbers (libcontainer's `configs.Config`, in TypeScript). config/
 * produces it from a bundle; kernel/ turns it into a spawn plan. Types only: the bottom layer, importing
 * nothing (as runc's libcontainer/configs).
 */

/** A namespace kind, named as in the OCI runtime spec. */
export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup' | 'time';

/** A namespace the container gets: created fresh (no path) or joined (path to an nsfs file). */
export interface NamespaceSetup {
  type: NamespaceType;
  /** Absolute path of a namespace file (/proc/PID/ns/net, a bind-mounted nsfs file) to join instead of creating. */
  path?: string;
}

/** One user or group id range of a user namespace map (`containerID hostID size`). */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** One mount, with OCI options already split into mount(2) flags and data. */
export interface MountSetup {
  /** Absolute destination inside the container. */
  destination: string;
  /** Filesystem type for mount(2) ("bind" is normalised to "" with MS_BIND in flags). */
  type: string;
  /** Source: a host path for binds (absolute, resolved against the bundle), a device or a label otherwise. */
  source: string;
  /** MS_* flags for the initial mount(2) (MS_BIND, MS_REC, MS_RDONLY, MS_NOSUID, ...). */
  flags: number;
  /** Flags the options explicitly cleared (`rw`, `suid`, `dev`, `exec`, ...), kept so a bind remount knows them. */
  clearedFlags: number;
  /** Propagation changes applied after the mount, each one mount(2) call (MS_PRIVATE, MS_SLAVE|MS_REC, ...). */
  propagationFlags: number[];
  /** Filesystem-specific data string (`mode=755,size=65536k`). */
  data: string;
  /** True for a bind mount whose source is not a directory: the mountpoint is created as a file. */
  sourceIsFile?: boolean;
}

/** A device node to create in the container (`linux.devices[]`). */
export interface DeviceSetup {
  /** Absolute path inside the container. */
  path: string;
  /** 'c' (char; 'u' is normalised to 'c'), 'b' (block) or 'p' (fifo). */
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  /** Permission bits (defaults to 0o666 like runc). */
  fileMode: number;
  uid: number;
  gid: number;
}

/** One rlimit: resource as RLIMIT_* number. */
export interface RlimitSetup {
  /** OCI name, for error messages. */
  name: string;
  resource: number;
  soft: bigint;
  hard: bigint;
}

/** Capability sets as capability numbers. */
export interface CapabilitySetup {
  bounding: number[];
  effective: number[];
  permitted: number[];
  inheritable: number[];
  ambient: number[];
}

/** The process the container runs (OCI `process`). */
export interface ProcessSetup {
  args: string[];
  env: string[];
  cwd: string;
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Umask to set before execve; undefined keeps runc's default of 0o022. */
  umask?: number;
  rlimits: RlimitSetup[];
  /** oom_score_adj written for the process, if set. */
  oomScoreAdj?: number;
  noNewPrivileges: boolean;
  /** The five sets; empty sets when the config has none (as runc). */
  capabilities: CapabilitySetup;
  apparmorProfile?: string;
  selinuxLabel?: string;
}

/** Everything the kernel layer needs to create one container. */
export interface ContainerSetup {
  /** Absolute path of the root filesystem on the host. */
  rootfs: string;
  readonlyRootfs: boolean;
  /** MS_* propagation flags for "/" in the container (default MS_SLAVE|MS_REC, as runc). */
  rootPropagation: number;
  namespaces: NamespaceSetup[];
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  hostname?: string;
  domainname?: string;
  mounts: MountSetup[];
  devices: DeviceSetup[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Sysctl name (dotted, e.g. net.ipv4.ip_forward) to value. */
  sysctl: Record<string, string>;
  process: ProcessSetup;
  /** Use MS_MOVE + chroot instead of pivot_root (runc's --no-pivot; needed for a rootfs on ramfs). */
  noPivotRoot: boolean;
  /** The seccomp filter to load last before the start gate; undefined for none. */
  seccomp?: SeccompProfile;
  /** `linux.resources`, validated; undefined when the config has none. */
  resources?: CgroupResources;
  /** `linux.cgroupsPath` as given (non-empty); undefined means the container id, as runc. */
  cgroupsPath?: string;
}

/** A throttle or weight entry for one block device. */
export interface BlockDeviceValue {
  major: number;
  minor: number;
  /** bytes/s or io/s for throttles. */
  rate?: bigint;
  weight?: number;
  leafWeight?: number;
}

/** One device cgroup rule (OCI linux.resources.devices[]). */
export interface DeviceRule {
  allow: boolean;
  /** 'a' (all), 'c' or 'b'. */
  type: 'a' | 'c' | 'b';
  /** -1 for any ("*"). */
  major: number;
  minor: number;
  /** Any of "rwm". */
  access: string;
}

/** OCI linux.resources, validated and typed (bigints where the spec allows 64-bit values; -1 = unlimited). */
export interface CgroupResources {
  memory?: {
    limit?: bigint;
    reservation?: bigint;
    swap?: bigint;
    kernel?: bigint;
    kernelTCP?: bigint;
    swappiness?: bigint;
    disableOOMKiller?: boolean;
    useHierarchy?: boolean;
    checkBeforeUpdate?: boolean;
  };
  cpu?: {
    shares?: bigint;
    quota?: bigint;
    burst?: bigint;
    period?: bigint;
    realtimeRuntime?: bigint;
    realtimePeriod?: bigint;
    cpus?: string;
    mems?: string;
    idle?: bigint;
  };
  pids?: { limit: bigint };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: BlockDeviceValue[];
    throttleReadBpsDevice?: BlockDeviceValue[];
    throttleWriteBpsDevice?: BlockDeviceValue[];
    throttleReadIOPSDevice?: BlockDeviceValue[];
    throttleWriteIOPSDevice?: BlockDeviceValue[];
  };
  hugepageLimits?: Array<{ pageSize: string; limit: bigint }>;
  network?: { classID?: number; priorities?: Array<{ name: string; priority: number }> };
  devices?: DeviceRule[];
  rdma?: Record<string, { hcaHandles?: number; hcaObjects?: number }>;
  /** cgroup v2 file → value, written as given. */
  unified?: Record<string, string>;
}

/** A seccomp action, as libseccomp encodes it (SCMP_ACT_*), with its errno or trace value folded in. */
export type SeccompActionName = 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_TRAP' | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG' | 'SCMP_ACT_NOTIFY';

/** Comparison operators of syscall argument conditions. */
export type SeccompOp = 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

/** One argument condition. */
export interface SeccompArg {
  index: number;
  value: bigint;
  valueTwo: bigint;
  op: SeccompOp;
}

/** One rule: these syscalls get this action (when the conditions hold). */
export interface SeccompRule {
  names: string[];
  action: SeccompActionName;
  errnoRet?: number;
  args: SeccompArg[];
  /** Where it came from, for warnings: "linux.seccomp.syscalls[3]". */
  field: string;
}

/** A validated seccomp profile (OCI linux.seccomp). */
export interface SeccompProfile {
  defaultAction: SeccompActionName;
  defaultErrnoRet?: number;
  /** libseccomp architecture names ("x86_64", "x86", "x32"); empty means the native one only. */
  architectures: string[];
  /** SECCOMP_FILTER_FLAG_* names. */
  flags: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  rules: SeccompRule[];
}

/** One veth interface of a container (libcontainer's configs.Network with type "veth"). */
export interface VethSetup {
  /** Name inside the container ("eth0"). */
  name: string;
  /** Name of the host end (at most 15 bytes). */
  hostInterfaceName: string;
  /** Bridge the host end joins, if any. */
  bridge?: string;
  mtu?: number;
  /** MAC address of the container end. */
  macAddress?: string;
  /** IPv4 or IPv6 address with prefix length. */
  address?: string;
  gateway?: string;
  ipv6Address?: string;
  ipv6Gateway?: string;
  hairpinMode?: boolean;
  txQueueLen?: number;
}
