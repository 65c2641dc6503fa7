/**
 * Seccomp, checked from inside real containers: errno actions (errnoRet, defaultErrnoRet), argument
 * conditions (EQ, MASKED_EQ, several conditions on one index ORed, on different indexes ANDed), i386 calls
 * of a 64-bit container (tiny ELF binaries generated from bytes: test/fixtures/elf.ts), KILL_PROCESS, TRAP,
 * LOG (the audit line in the kernel log) and SECCOMP_FILTER_FLAG_LOG, NOTIFY answered by a
 * SeccompNotifyListener in this process, /proc/self/status in both orders of seccomp and user switch, the
 * default profile, and the CLI's warnings and errors for bad profiles.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultSeccomp } from '../../config/default-seccomp.js';
import { type ContainerProcessState, type SeccompNotification, SeccompNotifyListener, type SeccompNotifySession } from '../../kernel/index.js';
import { cleanupCordonRoot, cordon, freshRoot, leftovers, removeIoDir, theError } from '../cli/helpers.js';
import { NR, type SyscallArg, syscallElf } from '../fixtures/elf.js';
import { runsI386 } from '../fixtures/host-features.js';
import { type Bundle, Harness, type OciSpecLike, parseStatus, sections } from './harness.js';

const h = new Harness('seccomp');
const cliRoot = freshRoot('cordon-it-seccomp-cli');
afterAll(async () => {
  await cleanupCordonRoot(cliRoot);
  removeIoDir();
  await h.cleanup();
});

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
/**
 * Whether this host runs i386 programs at all (some kernels refuse them: execve gives ENOEXEC with 32-bit
 * emulation off). Where it does not, no i386 syscall can reach a filter: those tests are skipped, named so.
 */
const I386 = runsI386();
const NEEDS_I386 = ' (needs i386 programs to run on the host)';

/** A profile that allows everything but `syscalls`. */
function allowAllBut(syscalls: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { defaultAction: 'SCMP_ACT_ALLOW', syscalls, ...extra };
}

/** Set linux.seccomp and `sh -c script`. */
function withSeccomp(seccomp: Record<string, unknown>, script: string, more?: (s: OciSpecLike) => void): (s: OciSpecLike) => void {
  return (s) => {
    s.linux.seccomp = seccomp;
    s.process.args = ['sh', '-c', script];
    more?.(s);
  };
}

/** A bundle with generated syscall binaries under /c in its rootfs. */
function bundleWith(spec: (s: OciSpecLike) => void, bins: Record<string, { arch: 'x86_64' | 'i386'; nr: number; args: SyscallArg[] }>): Bundle {
  const b = h.bundle(spec);
  mkdirSync(join(b.rootfs, 'c'));
  for (const [name, x] of Object.entries(bins)) writeFileSync(join(b.rootfs, 'c', name), syscallElf(x.arch, x.nr, x.args), { mode: 0o755 });
  return b;
}

/** Kernel log lines of seccomp audit records (type=1326) of host pid `pid`, polled until `want` is found (kauditd is asynchronous). */
async function auditLines(pid: number, want: RegExp): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    lines = execFileSync('dmesg').toString().split('\n').filter((l) => l.includes('type=1326') && l.includes(` pid=${pid} `));
    if (lines.some((l) => want.test(l))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return lines;
}

// First in the file: the kernel rate-limits audit printk (10 lines per 5 s), and the kill tests below log too.
describe('SCMP_ACT_LOG and SECCOMP_FILTER_FLAG_LOG (the kernel log is readable here: dmesg)', () => {
  it('SCMP_ACT_LOG: the syscall succeeds and an audit line (type=1326, code=0x7ffc0000) names the pid and syscall 83', async () => {
    const r = await h.run((s) => {
      s.root.readonly = false;
      s.linux.seccomp = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_LOG' }]);
      s.process.args = ['mkdir', '/logged-dir'];
    });
    expect(r.status).toEqual({ code: 0, signal: null });
    expect(existsSync(join(r.bundle.rootfs, 'logged-dir'))).toBe(true);
    const lines = await auditLines(r.pid, /syscall=83 /);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`audit: type=1326 .* pid=${r.pid} comm="mkdir" exe="/bin/busybox" sig=0 arch=c000003e syscall=83 compat=0 ip=0x[0-9a-f]+ code=0x7ffc0000$`));
  });

  it('flags [SECCOMP_FILTER_FLAG_LOG]: an ERRNO action is logged too (code=0x50000); without the flag it is not', async () => {
    // The unflagged one first: kauditd prints in order, so once the flagged line is there, the other would be too.
    const quiet = await h.run((s) => {
      s.linux.seccomp = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }]);
      s.process.args = ['mkdir', '/dev/shm/x'];
    });
    const logged = await h.run((s) => {
      s.linux.seccomp = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }], { flags: ['SECCOMP_FILTER_FLAG_LOG'] });
      s.process.args = ['mkdir', '/dev/shm/x'];
    });
    for (const r of [logged, quiet]) {
      expect(r.status).toEqual({ code: 1, signal: null });
      expect(r.out).toBe("mkdir: can't create directory '/dev/shm/x': Permission denied\n");
    }
    const lines = await auditLines(logged.pid, /syscall=83 /);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ sig=0 arch=c000003e syscall=83 compat=0 ip=0x[0-9a-f]+ code=0x50000$/);
    expect(execFileSync('dmesg').toString().split('\n').filter((l) => l.includes('type=1326') && l.includes(` pid=${quiet.pid} `))).toEqual([]);
  });
});

describe('errno actions', () => {
  it('a denied syscall fails with the rule\'s errnoRet (mkdir → 13 EACCES); the shell goes on', async () => {
    const r = await h.run(withSeccomp(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }]), 'mkdir /dev/shm/a; echo rc=$?; touch /dev/shm/f; echo touch=$?'));
    expect(r.status).toEqual({ code: 0, signal: null });
    expect(r.out).toBe("mkdir: can't create directory '/dev/shm/a': Permission denied\nrc=1\ntouch=0\n");
  });

  it('SCMP_ACT_ERRNO without errnoRet is EPERM', async () => {
    const r = await h.run(withSeccomp(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }]), 'mkdir /dev/shm/a; echo rc=$?'));
    expect(r.out).toBe("mkdir: can't create directory '/dev/shm/a': Operation not permitted\nrc=1\n");
  });

  it('defaultErrnoRet: what the default action returns (95 EOPNOTSUPP for sethostname, not allowed by the default profile)', async () => {
    const profile = { ...defaultSeccomp(DEFAULT_CAPS), defaultErrnoRet: 95 };
    const r = await h.run(withSeccomp(profile, 'hostname evil; echo rc=$?; hostname'));
    expect(r.out).toBe('hostname: sethostname: Operation not supported\nrc=1\ncordon\n');
  });
});

describe('argument conditions', () => {
  it('EQ: chmod to 0777 is denied, to 0755 allowed', async () => {
    const p = allowAllBut([{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }] }]);
    const r = await h.run(withSeccomp(p, 'touch /dev/shm/f; chmod 777 /dev/shm/f; echo rc=$?; stat -c %a /dev/shm/f; chmod 755 /dev/shm/f; echo rc=$?; stat -c %a /dev/shm/f'));
    expect(r.out).toBe('chmod: /dev/shm/f: Operation not permitted\nrc=1\n644\nrc=0\n755\n');
  });

  it('MASKED_EQ: any mode with the world-write bit (mask 0o002) is denied, others pass', async () => {
    const p = allowAllBut([{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 1, value: 0o002, valueTwo: 0o002, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    const script = ['touch /dev/shm/f', ...['757', '602', '755', '640'].map((m) => `chmod ${m} /dev/shm/f 2>/dev/null; echo ${m}=$?`), 'stat -c %a /dev/shm/f'].join('; ');
    const r = await h.run(withSeccomp(p, script));
    expect(r.out).toBe('757=1\n602=1\n755=0\n640=0\n640\n');
  });

  it('two conditions on the same index are ORed (0777 and 0700 denied, 0755 allowed)', async () => {
    const p = allowAllBut([{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0o777, op: 'SCMP_CMP_EQ' }, { index: 1, value: 0o700, op: 'SCMP_CMP_EQ' }] }]);
    const script = ['touch /dev/shm/f', ...['777', '700', '755'].map((m) => `chmod ${m} /dev/shm/f 2>/dev/null; echo ${m}=$?`)].join('; ');
    expect((await h.run(withSeccomp(p, script))).out).toBe('777=1\n700=1\n755=0\n');
  });

  it('conditions on different indexes are ANDed: kill(1, 0) denied; kill(1, SIGCONT) and kill(other, 0) allowed', async () => {
    const p = allowAllBut([{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 0, op: 'SCMP_CMP_EQ' }] }]);
    const r = await h.run(withSeccomp(p, 'kill -0 1; echo a=$?; kill -CONT 1; echo b=$?; sleep 10 & kill -0 $!; echo c=$?; kill $!'));
    expect(r.out).toBe('sh: can\'t kill pid 1: Operation not permitted\na=1\nb=0\nc=0\n');
  });

  it('personality: PER_LINUX32 (0x8) denied, PER_LINUX (0) allowed', async () => {
    const p = allowAllBut([{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] }]);
    const r = await h.run(withSeccomp(p, 'linux32 true; echo rc=$?; linux64 true; echo rc=$?'));
    expect(r.out).toBe('linux32: personality(0x8): Operation not permitted\nrc=1\nrc=0\n');
  });
});

describe('architectures: an i386 process (int 0x80) in the container', () => {
  const bins = {
    mkdir32: { arch: 'i386' as const, nr: NR.i386.mkdir, args: [{ str: '/dev/shm/d32' }, 0o755] },
    getpid32: { arch: 'i386' as const, nr: NR.i386.getpid, args: [] },
    mkdir64: { arch: 'x86_64' as const, nr: NR.x86_64.mkdir, args: [{ str: '/dev/shm/d64' }, 0o755] },
  };
  const script = '/c/mkdir32; echo mkdir32=$?; /c/getpid32; echo getpid32=$?; /c/mkdir64; echo mkdir64=$?; ls /dev/shm';

  it.skipIf(!I386)(`without seccomp the generated binaries work (control): both mkdirs succeed${NEEDS_I386}`, async () => {
    const r = await h.run(bundleWith((s) => { s.process.args = ['sh', '-c', script]; }, bins));
    expect(r.out).toBe('mkdir32=0\ngetpid32=0\nmkdir64=0\nd32\nd64\n');
  });

  it.skipIf(!I386)(`[X86_64, X86]: the rule denies mkdir by its i386 number too (EPERM); other i386 calls pass${NEEDS_I386}`, async () => {
    const p = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }], { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] });
    const r = await h.run(bundleWith(withSeccomp(p, script), bins));
    expect(r.out).toBe('mkdir32=1\ngetpid32=0\nmkdir64=1\n');
  });

  it.skipIf(!I386)(`[X86_64] only: any i386 syscall hits libseccomp's bad-arch action (KILL): SIGSYS, exit 159${NEEDS_I386}`, async () => {
    const p = allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }], { architectures: ['SCMP_ARCH_X86_64'] });
    const r = await h.run(bundleWith(withSeccomp(p, script), bins));
    expect(r.out).toBe('Bad system call\nmkdir32=159\nBad system call\ngetpid32=159\nmkdir64=1\n');
  });
});

describe('kill and trap actions', () => {
  const trapScript = 'trap "echo caught SIGSYS" SYS; umask 077; echo after';

  it('SCMP_ACT_KILL_PROCESS ends the container with SIGSYS (signal 31; a trap cannot catch it)', async () => {
    const r = await h.run(withSeccomp(allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_KILL_PROCESS' }]), trapScript));
    expect(r.status).toEqual({ code: null, signal: 31, core: false });
    expect(r.out).toBe('');
  });

  it('`cordon run` of a container killed by SCMP_ACT_KILL_PROCESS exits 159 (128 + SIGSYS)', async () => {
    const b = h.bundle(withSeccomp(allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_KILL_PROCESS' }]), 'umask 077; echo after'));
    const r = await cordon(cliRoot, ['run', '-b', b.dir, 'kill-process']);
    expect(r.code).toBe(159);
    expect(r.stdout).toBe('');
  });

  it('SCMP_ACT_TRAP delivers SIGSYS: the shell\'s trap runs and it goes on; without a trap SIGSYS kills it', async () => {
    const p = allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_TRAP' }]);
    const caught = await h.run(withSeccomp(p, trapScript));
    expect(caught.status).toEqual({ code: 0, signal: null });
    expect(caught.out).toBe('caught SIGSYS\nafter\n');
    const killed = await h.run(withSeccomp(p, 'umask 077; echo after'));
    expect(killed.status).toEqual({ code: null, signal: 31, core: false });
    expect(killed.out).toBe('');
  });

  it('SCMP_ACT_KILL (= KILL_THREAD) on a single-threaded process: SIGSYS', async () => {
    const r = await h.run(withSeccomp(allowAllBut([{ names: ['umask'], action: 'SCMP_ACT_KILL' }]), 'umask 077; echo after'));
    expect(r.status).toEqual({ code: null, signal: 31, core: false });
  });
});

describe('SCMP_ACT_NOTIFY with a SeccompNotifyListener in this process', () => {
  for (const nnp of [true, false]) {
    it(`noNewPrivileges ${nnp}, uid 1000: state message and fd received; mkdir CONTINUEd (created), rmdir → EACCES, getppid → 4242`, async () => {
      const sock = h.file('agent.sock');
      const seen: SeccompNotification[] = [];
      const errors: Error[] = [];
      const valid: boolean[] = [];
      const listener = SeccompNotifyListener.listen(sock, (n, sess) => {
        seen.push(n);
        valid.push(sess.idValid(n.id)); // the caller is still waiting for this answer
        if (n.syscall === 'mkdir') return { continue: true };
        if (n.syscall === 'getppid') return { value: 4242 };
        return { error: 13 };
      }, { onError: (e) => errors.push(e) });
      let session: SeccompNotifySession | undefined;
      void listener.nextSession().then((s) => (session = s));
      try {
        const b = h.bundle(withSeccomp(
          allowAllBut([{ names: ['mkdir', 'rmdir', 'getppid'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: sock, listenerMetadata: 'agent-meta' }),
          'mkdir /home/app/made; echo mkdir=$?; rmdir /home/app/made; echo rmdir=$?; ls -d /home/app/made; sh -c \'echo ppid=$PPID\'; id -u',
          (s) => {
            s.root.readonly = false;
            s.process.noNewPrivileges = nnp;
            s.process.user = { uid: 1000, gid: 1000 };
            s.annotations = { 'org.example/agent': 'yes' };
          },
        ));
        const r = await h.run(b);
        expect(r.status).toEqual({ code: 0, signal: null });
        expect(r.out).toBe("mkdir=0\nrmdir: '/home/app/made': Permission denied\nrmdir=1\n/home/app/made\nppid=4242\n1000\n");
        expect(existsSync(join(b.rootfs, 'home/app/made'))).toBe(true);
        expect(session).toBeDefined();
        const state: ContainerProcessState = session!.state;
        expect(state).toEqual({
          ociVersion: '1.2.0',
          fds: ['seccompFd'],
          pid: r.pid,
          metadata: 'agent-meta',
          state: { ociVersion: '1.0.2-dev', id: r.id, status: 'creating', pid: r.pid, bundle: b.dir, annotations: { 'org.example/agent': 'yes' } },
        });
        const mkdir = seen.find((n) => n.syscall === 'mkdir');
        expect(mkdir?.arch).toBe(0xc000003e);
        expect(mkdir?.nr).toBe(NR.x86_64.mkdir);
        expect(mkdir?.args[1]).toBe(0o777n);
        expect(seen.map((n) => n.syscall).filter((n) => n !== 'getppid')).toEqual(['mkdir', 'rmdir']);
        expect(valid.every(Boolean)).toBe(true);
        expect(session!.idValid(mkdir!.id)).toBe(false); // answered long ago
        // Every process of the filter has exited: the fd hangs up and the session ends.
        await session!.done;
        expect(errors).toEqual([]);
      } finally {
        listener.close();
      }
      expect(existsSync(sock)).toBe(false);
    });
  }

  for (const nnp of [true, false]) {
    const names = nnp ? ['close', 'prctl'] : ['close', 'prctl', 'setresuid', 'setresgid', 'capset', 'chdir'];
    it(`noNewPrivileges ${nnp}: the runtime's own calls after loading the filter (${names.join(', ')}) may be notified: the listener has the fd at once`, async () => {
      // Found by this test: the fd used to be handed over only at the start gate, so these hung for 30 s.
      const sock = h.file('agent.sock');
      const seen: Array<[number, string]> = [];
      const listener = SeccompNotifyListener.listen(sock, (n) => {
        seen.push([n.pid, n.syscall]);
        return { continue: true };
      });
      try {
        const t0 = performance.now();
        const r = await h.run(withSeccomp(allowAllBut([{ names, action: 'SCMP_ACT_NOTIFY' }], { listenerPath: sock }), 'echo ok', (s) => {
          s.process.noNewPrivileges = nnp;
          s.process.user = { uid: 1000, gid: 1000 };
        }));
        expect(performance.now() - t0).toBeLessThan(5000);
        expect(r.status).toEqual({ code: 0, signal: null });
        expect(r.out).toBe('ok\n');
        // Before execve, from the container's init itself.
        const byInit = new Set(seen.filter(([pid]) => pid === r.pid).map(([, name]) => name));
        for (const name of names) expect(byInit, name).toContain(name);
      } finally {
        listener.close();
      }
    });
  }

  it('nobody listening on listenerPath: create fails naming the field and the path, exit 1, nothing left behind', async () => {
    const sock = h.file('nobody.sock');
    const b = h.bundle(withSeccomp(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: sock }), 'mkdir /dev/shm/a'));
    const pidFile = h.file('pid');
    const r = await cordon(cliRoot, ['run', '-b', b.dir, '--pid-file', pidFile, 'nobody-listening']);
    expect(r.code).toBe(1);
    expect(theError(r)).toBe(`cordon: linux.seccomp.listenerPath: connect ${JSON.stringify(sock)}: ENOENT (No such file or directory)`);
    expect(leftovers(b.dir, cliRoot, pidFile)).toEqual([]);
  });

  it('closing the listener fails pending notified syscalls with ENOSYS (not a hang)', async () => {
    const sock = h.file('agent.sock');
    const listener = SeccompNotifyListener.listen(sock, async () => {
      listener.close();
      return new Promise<never>(() => {});
    });
    const r = await h.run(withSeccomp(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: sock }), 'mkdir /dev/shm/a; echo rc=$?'));
    expect(r.out).toBe("mkdir: can't create directory '/dev/shm/a': Function not implemented\nrc=1\n");
  });

  it('SCMP_ACT_NOTIFY as the default action, or for write/read/sendmsg, is a config error (it would deadlock the runtime)', async () => {
    const b1 = h.bundle((s) => { s.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/tmp/x.sock', syscalls: [{ names: ['exit_group'], action: 'SCMP_ACT_ALLOW' }] }; });
    const r1 = await cordon(cliRoot, ['run', '-b', b1.dir, 'notify-default']);
    expect(r1.code).toBe(1);
    expect(theError(r1)).toBe("cordon: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own syscalls after loading the filter would wait for a listener that has no fd yet)");
    const b2 = h.bundle((s) => { s.linux.seccomp = allowAllBut([{ names: ['mkdir', 'write'], action: 'SCMP_ACT_NOTIFY' }], { listenerPath: '/tmp/x.sock' }); });
    const r2 = await cordon(cliRoot, ['run', '-b', b2.dir, 'notify-write']);
    expect(r2.code).toBe(1);
    expect(theError(r2)).toBe('cordon: linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for "write": the runtime itself calls it after loading the filter, before the listener has its fd');
    expect(leftovers(b1.dir, cliRoot)).toEqual([]);
    expect(leftovers(b2.dir, cliRoot)).toEqual([]);
  });
});

describe('/proc/self/status: Seccomp 2 and NoNewPrivs as configured, in both orders of seccomp and user switch', () => {
  const script = 'grep -E "^(Uid|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status; mkdir /dev/shm/a; echo rc=$?';
  for (const [nnp, uid] of [[true, 0], [true, 1000], [false, 0], [false, 1000]] as const) {
    it(`noNewPrivileges ${nnp}, uid ${uid}`, async () => {
      const r = await h.run(withSeccomp(allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }]), script, (s) => {
        s.process.noNewPrivileges = nnp;
        s.process.user = { uid, gid: uid };
      }));
      expect(r.status).toEqual({ code: 0, signal: null });
      const st = parseStatus(r.out);
      expect(st.Uid).toBe(`${uid}\t${uid}\t${uid}\t${uid}`);
      expect(st.NoNewPrivs).toBe(nnp ? '1' : '0');
      expect(st.Seccomp).toBe('2');
      expect(st.Seccomp_filters).toBe('1');
      expect(r.out.split('\n').slice(-3).join('\n')).toBe("mkdir: can't create directory '/dev/shm/a': Permission denied\nrc=1\n");
    });
  }
});

describe('the default profile (defaultSeccomp / cordon spec --seccomp)', () => {
  const ALL_CAPS = [...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_MODULE', 'CAP_SYS_BOOT', 'CAP_DAC_READ_SEARCH', 'CAP_BPF', 'CAP_PERFMON'];
  const x64 = (nr: number, args: SyscallArg[]) => ({ arch: 'x86_64' as const, nr, args });
  const x86 = (nr: number, args: SyscallArg[]) => ({ arch: 'i386' as const, nr, args });
  // Each call with what it returns without a filter (the control): ENOSYS, EFAULT, EINVAL or 0, never EPERM.
  const calls: Record<string, [{ arch: 'x86_64' | 'i386'; nr: number; args: SyscallArg[] }, number]> = {
    kexec_load: [x64(NR.x86_64.kexec_load, [0, 1000, 0, 0]), 38],
    open_by_handle_at: [x64(NR.x86_64.open_by_handle_at, [-1, 0, 0]), 14],
    init_module: [x64(NR.x86_64.init_module, [0, 0, { str: '' }]), 38],
    bpf: [x64(NR.x86_64.bpf, [0x7fff, 0, 0]), 22],
    perf_event_open: [x64(NR.x86_64.perf_event_open, [0, 0, -1, -1, 0]), 14],
    mount: [x64(NR.x86_64.mount, [0, 0, 0, 0, 0]), 14],
    unshare: [x64(NR.x86_64.unshare, [0]), 0],
    // i386 calls only where the host runs i386 programs.
    ...(I386
      ? {
          mount32: [x86(NR.i386.mount, [0, 0, 0, 0, 0]), 14],
          unshare32: [x86(NR.i386.unshare, [0]), 0],
          bpf32: [x86(NR.i386.bpf, [0x7fff, 0, 0]), 22],
        }
      : {}),
  };
  const bins = Object.fromEntries(Object.entries(calls).map(([k, [bin]]) => [k, bin]));
  const arches = I386 ? 'x86_64 and i386' : 'x86_64; no i386 calls: this host does not run i386 programs';
  const script = [...Object.keys(bins).map((k) => `/c/${k}; echo ${k}=$?`), 'echo "== applets =="', 'hostname evil; unshare -n true; mkdir -p /dev/shm/mnt; mount -t tmpfs x /dev/shm/mnt', 'echo "== shell =="', 'cd /dev/shm && echo hi > f && cat f && ls && sleep 0 && id -u && wc -c < f; grep -E "^Seccomp:" /proc/self/status'].join('\n');
  // The container has every capability these calls need (CAP_SYS_ADMIN, CAP_SYS_MODULE, ...) while the profile is
  // rendered for the default capabilities: a refusal below is the filter's, not a missing capability.
  const spec = (seccomp: boolean) => (s: OciSpecLike) => {
    s.process.capabilities = { bounding: ALL_CAPS, effective: ALL_CAPS, permitted: ALL_CAPS };
    s.process.args = ['sh', '-c', script];
    if (seccomp) s.linux.seccomp = defaultSeccomp(DEFAULT_CAPS);
  };

  it(`control without a profile: the same calls get past the filterless kernel entry (ENOSYS/EFAULT/EINVAL/0, never EPERM; ${arches})`, async () => {
    const s = sections(`== calls ==\n${(await h.run(bundleWith(spec(false), bins))).out}`);
    expect(s.calls).toBe(Object.entries(calls).map(([k, [, errno]]) => `${k}=${errno}`).join('\n'));
    expect(s.applets).toBe('');
  });

  it(`with it: kexec_load, open_by_handle_at, init_module, bpf, perf_event_open, mount, unshare (${arches}) → EPERM; a shell session works`, async () => {
    const r = await h.run(bundleWith(spec(true), bins));
    expect(r.status).toEqual({ code: 0, signal: null });
    const s = sections(`== calls ==\n${r.out}`);
    expect(s.calls).toBe(Object.keys(bins).map((k) => `${k}=1`).join('\n'));
    expect(s.applets).toBe('hostname: sethostname: Operation not permitted\nunshare: unshare(0x40000000): Operation not permitted\nmount: permission denied (are you root?)');
    expect(s.shell).toBe('hi\nf\nmnt\n0\n3\nSeccomp:\t2');
  });

  it('`cordon spec --seccomp` writes exactly defaultSeccomp(the spec\'s capabilities)', async () => {
    const dir = h.file('spec');
    mkdirSync(dir);
    const r = await cordon(cliRoot, ['spec', '--seccomp'], { cwd: dir });
    expect(r.code).toBe(0);
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as OciSpecLike;
    expect(spec.linux.seccomp).toEqual(defaultSeccomp(spec.process.capabilities?.bounding));
    expect(spec.process.capabilities?.bounding).toEqual(DEFAULT_CAPS);
  });
});

describe('bad profiles through the CLI', () => {
  it('a syscall name libseccomp does not know is skipped with a warning; the rest of the rule applies', async () => {
    const b = h.bundle(withSeccomp(allowAllBut([{ names: ['mkdir', 'no_such_syscall'], action: 'SCMP_ACT_ERRNO' }]), 'mkdir /dev/shm/a; echo rc=$?'));
    const r = await cordon(cliRoot, ['run', '-b', b.dir, 'unknown-name']);
    expect(r.code).toBe(0);
    // The container's stderr is the CLI's.
    expect(r.stderr.split('\n')).toContain('cordon: warning: linux.seccomp.syscalls[0].names[1]: unknown syscall "no_such_syscall" skipped');
    expect(r.stderr.split('\n')).toContain("mkdir: can't create directory '/dev/shm/a': Operation not permitted");
    expect(r.stdout).toBe('rc=1\n');
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['action', allowAllBut([{ names: ['mkdir'], action: 'SCMP_ACT_NOPE' }]), 'linux.seccomp.syscalls[0].action: unknown seccomp action "SCMP_ACT_NOPE"'],
    ['default action', { defaultAction: 'SCMP_ACT_MAYBE' }, 'linux.seccomp.defaultAction: unknown seccomp action "SCMP_ACT_MAYBE"'],
    ['architecture', allowAllBut([], { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] }), 'linux.seccomp.architectures[1]: unknown seccomp architecture "SCMP_ARCH_VAX"'],
    ['op', allowAllBut([{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 1, op: 'SCMP_CMP_SIMILAR' }] }]), 'linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator "SCMP_CMP_SIMILAR"'],
  ];
  for (const [what, profile, message] of bad) {
    it(`an unknown ${what} is a config error naming its JSON path: exit 1, nothing left behind`, async () => {
      const b = h.bundle((s) => { s.linux.seccomp = profile; });
      const pidFile = h.file('pid');
      const r = await cordon(cliRoot, ['run', '-b', b.dir, '--pid-file', pidFile, `bad-${what.replace(' ', '-')}`]);
      expect(r.code).toBe(1);
      expect(theError(r)).toBe(`cordon: ${message}`);
      expect(r.stdout).toBe('');
      expect(leftovers(b.dir, cliRoot, pidFile)).toEqual([]);
    });
  }
});
