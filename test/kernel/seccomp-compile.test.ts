/**
 * The seccomp filter compile (kernel/seccomp/seccomp.ts) with profiles validated without a syscall resolver: names
 * libseccomp cannot resolve are skipped, so the filter is the one a profile checked with knownSyscall (its
 * unknown names dropped at validation) gives — for a small rule and for cordon's default profile.
 */
import { describe, expect, it } from 'vitest';
import { Issues, convertSeccomp, defaultSeccomp } from '../../config/index.js';
import type { SeccompProfile } from '../../config/model.js';
import { compileSeccomp, knownSyscall } from '../../kernel/seccomp/seccomp.js';

function profile(raw: unknown, resolver?: (name: string) => boolean): SeccompProfile {
  const issues = new Issues();
  const p = convertSeccomp(issues, raw, resolver);
  issues.throwIfAny();
  if (!p) throw new Error('no profile');
  return p;
}

describe('seccomp compile', () => {
  it('knownSyscall asks libseccomp', () => {
    expect(knownSyscall('mkdir')).toBe(true);
    expect(knownSyscall('no_such_syscall')).toBe(false);
  });

  it('skips a name libseccomp does not know instead of failing; the filter equals the one without it', () => {
    const raw = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO' }] };
    const unchecked = compileSeccomp(profile(raw));
    const checked = compileSeccomp(profile(raw, knownSyscall));
    expect(unchecked.skipped).toEqual(['no_such_syscall']);
    expect(checked.skipped).toEqual([]);
    expect(unchecked.bpf.equals(checked.bpf)).toBe(true);
  });

  it("cordon's default profile gives the same filter validated with or without the resolver", () => {
    const raw = defaultSeccomp(['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN']);
    const unchecked = compileSeccomp(profile(raw));
    const checked = compileSeccomp(profile(raw, knownSyscall));
    expect(unchecked.bpf.equals(checked.bpf)).toBe(true);
    expect(unchecked.flags).toBe(checked.flags);
  });
});
