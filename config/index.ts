/**
 * config/: the container config model (model.ts) and reading an OCI runtime-spec bundle (config.json
 * 1.0.x–1.2.x) into it, validating every field first and reporting every problem by JSON path. The bottom
 * layer: it imports nothing from kernel/ and loads no native code (the seccomp syscall check is injected).
 */
export { loadBundle, readConfigJson, specToSetup, type LoadBundleOptions, type LoadedBundle, type SpecConversion } from './bundle.js';
export { validateSpec, MAX_UTS_NAME_LENGTH, type ValidateOptions, type ValidatedSpec } from './validate.js';
export { ConfigError, formatIssue, type ConfigIssue } from './config-error.js';
export { parseConfigJson, stringifyConfigJson, type ConfigJsonValue } from './config-json.js';
export type * from './oci-spec.js';
export {
  parseMountOptions,
  MOUNT_FLAG_OPTIONS,
  MOUNT_PROPAGATION_OPTIONS,
  UNSUPPORTED_MOUNT_OPTIONS,
  type MountFlagOption,
  type ParsedMountOptions,
  type UnsupportedMountOption,
} from './mount-options.js';
export { convertMounts, normaliseDestination } from './mounts.js';
export { rootfsPropagationFlags, ROOTFS_PROPAGATION, DEFAULT_ROOTFS_PROPAGATION } from './rootfs-propagation.js';
export { RUNC_DEFAULT_MASKED_PATHS, RUNC_DEFAULT_READONLY_PATHS } from './default-paths.js';
export { RUNC_DEFAULT_DEVICES, withRuncDefaultDevices } from './default-devices.js';
export { sysctlDottedName, sysctlProcPath, IPC_SYSCTLS } from './sysctl.js';
export { RLIM_INFINITY } from './rlimits.js';
export { convertCapabilities, readCapLastCap, CAPABILITY_SETS } from './capabilities.js';
export { HOOK_POINTS, type HookPoint } from './hooks.js';
export { parseSemanticVersion, NEWEST_SUPPORTED_MINOR, type SemanticVersion } from './oci-version.js';
export { Issues, childPath, indexPath } from './issues.js';

export { defaultSeccomp } from './default-seccomp.js';
export { convertSeccomp, libseccompArchName } from './seccomp.js';
export { convertResources } from './resources.js';

export type {
  BlockDeviceValue,
  CapabilitySetup,
  CgroupResources,
  ContainerSetup,
  DeviceRule,
  DeviceSetup,
  IdMapping,
  MountSetup,
  NamespaceSetup,
  NamespaceType,
  ProcessSetup,
  RlimitSetup,
  SeccompActionName,
  SeccompArg,
  SeccompOp,
  SeccompProfile,
  SeccompRule,
  VethSetup,
} from './model.js';
