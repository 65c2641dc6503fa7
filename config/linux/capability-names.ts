/**
 * Linux capability names in kernel order (linux/capability.h), so "CAP_NET_RAW" becomes its number. Plain
 * data; the kernel layer names capabilities in its step labels from the same table.
 */

/** Capability names (without CAP_) in kernel order: index = capability number. */
export const CAPABILITY_NAMES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** Capability number of an OCI name such as "CAP_NET_RAW", or undefined when the name is unknown. */
export function capabilityNumber(name: string): number | undefined {
  if (!name.startsWith('CAP_')) return undefined;
  const i = (CAPABILITY_NAMES as readonly string[]).indexOf(name.slice(4));
  return i < 0 ? undefined : i;
}
