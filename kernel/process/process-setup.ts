/**
 * The process half of container setup, in the child after the rootfs is final: hostname, domainname,
 * sysctls, rlimits, then user/groups, cwd, capabilities, umask and no_new_privs (libcontainer's
 * finalizeNamespace order), and a check that the executable can be run.
 */
import { SYS } from '../sys/numbers.js';
import { applyCapabilities, dropBoundingSet } from './capabilities.js';
import type { ChildSteps } from '../spawn/child-steps.js';
import { AT_FDCWD, PR } from '../sys/flags.js';
import type { ContainerSetup } from '../../config/model.js';

const X_OK = 1;
const AT_EACCESS = 0x200;

/** A raw uint32 array (setgroups list). */
function u32s(values: readonly number[]): Buffer {
  const b = Buffer.alloc(Math.max(4, 4 * values.length));
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, 4 * i));
  return b;
}

/** Hostname, domainname and sysctls (need uts/ipc/net namespaces and /proc mounted, as validated by config). */
export function setupKernelSettings(s: ChildSteps, setup: ContainerSetup): void {
  if (setup.hostname !== undefined) {
    const b = Buffer.from(setup.hostname);
    s.call('sethostname', [b, b.length], { field: 'hostname', label: `sethostname(${JSON.stringify(setup.hostname)})` });
  }
  if (setup.domainname !== undefined) {
    const b = Buffer.from(setup.domainname);
    s.call('setdomainname', [b, b.length], { field: 'domainname', label: `setdomainname(${JSON.stringify(setup.domainname)})` });
  }
  for (const [name, value] of Object.entries(setup.sysctl)) {
    // Dotted name to path: dots become slashes and slashes (dots inside a component, "eno2.100") dots, as runc.
    const rel = name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
    s.writeFile(`/proc/sys/${rel}`, value, `linux.sysctl[${JSON.stringify(name)}]`);
  }
}

/** setrlimit for each configured rlimit. */
export function setupRlimits(s: ChildSteps, setup: ContainerSetup): void {
  setup.process.rlimits.forEach((r, i) => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(r.soft, 0);
    b.writeBigUInt64LE(r.hard, 8);
    s.call('setrlimit', [r.resource, b], { field: `process.rlimits[${i}]`, label: `setrlimit(${r.name}, soft=${r.soft}, hard=${r.hard})` });
  });
}

/**
 * Become the configured user with the configured capabilities: bounding drops, keepcaps, setgroups,
 * setresgid, setresuid (raw syscalls: glibc's wrappers signal threads that do not exist in the child),
 * chdir as that user, capset + ambient, umask, no_new_privs, then check the executable as that user.
 */
export function setupUser(s: ChildSteps, setup: ContainerSetup, opts: { setgroupsAllowed: boolean; execPath: string; execCheckTolerates?: number[] }): void {
  const p = setup.process;
  const caps = p.capabilities;
  if (caps) dropBoundingSet(s, caps);
  if (caps && p.uid !== 0) s.call('prctl', [PR.SET_KEEPCAPS, 1, 0, 0, 0], { label: 'prctl(PR_SET_KEEPCAPS, 1)' });
  if (opts.setgroupsAllowed) {
    s.sys(SYS.setgroups, [p.additionalGids.length, u32s(p.additionalGids)], { field: 'process.user.additionalGids', label: `setgroups([${p.additionalGids.join(', ')}])` });
  }
  s.sys(SYS.setresgid, [p.gid, p.gid, p.gid], { field: 'process.user.gid', label: `setresgid(${p.gid})` });
  s.sys(SYS.setresuid, [p.uid, p.uid, p.uid], { field: 'process.user.uid', label: `setresuid(${p.uid})` });
  s.call('chdir', [p.cwd], { field: 'process.cwd', label: `chdir(${JSON.stringify(p.cwd)})` });
  if (caps && p.uid !== 0) s.call('prctl', [PR.SET_KEEPCAPS, 0, 0, 0, 0], { label: 'prctl(PR_SET_KEEPCAPS, 0)' });
  if (caps) applyCapabilities(s, caps);
  s.call('umask', [p.umask ?? 0o022], { check: 'none' });
  if (p.noNewPrivileges) s.call('prctl', [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0], { field: 'process.noNewPrivileges', label: 'prctl(PR_SET_NO_NEW_PRIVS, 1)' });
  // A seccomp profile loaded before this check may deny faccessat2 itself (EPERM/ENOSYS): then execve decides.
  s.sys(SYS.faccessat2, [AT_FDCWD, opts.execPath, X_OK, AT_EACCESS], {
    field: 'process.args[0]', label: `faccessat2(${JSON.stringify(opts.execPath)}, X_OK)`, tolerate: opts.execCheckTolerates ?? [],
  });
}
