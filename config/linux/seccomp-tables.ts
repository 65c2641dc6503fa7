/**
 * The seccomp names OCI `linux.seccomp` uses and their libseccomp / Linux values: actions, comparison
 * operators (libseccomp's enum scmp_compare), filter flags (SECCOMP_FILTER_FLAG_*) and the architecture
 * names libseccomp 2.5 resolves. Plain data, so a profile can be validated without loading libseccomp;
 * the kernel layer builds its filters from the same tables.
 */
import type { SeccompActionName, SeccompOp } from '../model.js';

/** Action names the OCI spec defines. */
export const SECCOMP_ACTIONS: readonly SeccompActionName[] = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY'];

/** OCI compare operator → libseccomp's enum scmp_compare. */
export const SECCOMP_OPS: Readonly<Record<SeccompOp, number>> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

/** SECCOMP_FILTER_FLAG_* values. */
export const SECCOMP_FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_NEW_LISTENER: 8,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: 16,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
};

/**
 * The architecture names (libseccomp's, "x86_64") libseccomp 2.5's seccomp_arch_resolve_name knows: the OCI
 * SCMP_ARCH_* names but LOONGARCH64, M68K, SH and SHEB, which need libseccomp 2.6.
 */
export const SECCOMP_ARCHITECTURES: ReadonlySet<string> = new Set([
  'x86', 'x86_64', 'x32', 'arm', 'aarch64', 'mips', 'mips64', 'mips64n32', 'mipsel', 'mipsel64', 'mipsel64n32',
  'ppc', 'ppc64', 'ppc64le', 's390', 's390x', 'parisc', 'parisc64', 'riscv64',
]);
