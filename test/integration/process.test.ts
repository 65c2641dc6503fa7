/**
 * The container's process, checked from inside: args, env, cwd (created when missing), user and groups,
 * umask, rlimits, oom_score_adj, no_new_privs, the five capability sets (compared with runc for the same
 * bundle), linux.sysctl, stdio passed through, and no fd beyond 0-2 — plus the clear errors for what
 * this machine refuses (negative oomScoreAdj, an rlimit above the hard limit).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import koffi from 'koffi';
import { afterAll, describe, expect, it } from 'vitest';
import { type Bundle, Harness, capHex, hostMountsUnder, parseStatus, sections, sh } from './harness.js';
import type { OciSpecLike } from './harness.js';

const h = new Harness('proc');
afterAll(() => h.cleanup());

const CAPS_SCRIPT = 'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):" /proc/self/status';

/** Run the bundle with runc (in its own temp root) and return its stdout. */
function runcOutput(b: Bundle): string {
  const root = mkdtempSync('/tmp/cordon-it-proc-runc-');
  try {
    return execFileSync('runc', ['--root', root, 'run', '-b', b.dir, `runc-${process.pid}-${Date.now()}`], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function hostLimit(name: string): { soft: string; hard: string } {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  if (!line) throw new Error(`no ${name} in /proc/self/limits`);
  const f = line.slice(26).trim().split(/\s+/);
  return { soft: f[0], hard: f[1] };
}

describe('args, env, cwd', () => {
  it('args are passed verbatim (spaces, empty strings)', async () => {
    const out = await h.output((s) => {
      s.process.args = ['sh', '-c', 'printf "%s|%s|%s|%s\\n" "$0" "$1" "$2" "$#"', 'zero', 'one two', ''];
    });
    expect(out).toBe('zero|one two||2\n');
  });

  it('env: exactly the configured variables, values with "=" and empty values kept', async () => {
    const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm', 'FOO=bar', 'WITH_EQ=a=b=c', 'EMPTY='];
    const out = await h.output((s) => {
      s.process.args = ['env'];
      s.process.env = env;
    });
    // runc also appends HOME (from the container's /etc/passwd) when the config has none; see the report.
    expect(out.trim().split('\n').filter((l) => !l.startsWith('HOME='))).toEqual(env);
  });

  it('a cwd missing from the rootfs is created (755, root-owned) and used, even as a non-root user', async () => {
    const r = await h.run((s) => {
      s.process.cwd = '/does/not/exist';
      s.process.user = { uid: 1000, gid: 1000 };
      s.process.args = ['sh', '-c', 'echo "== pwd =="; pwd; echo "== st =="; stat -c "%a %u:%g" .'];
    });
    expect(r.status?.code).toBe(0);
    const s = sections(r.out);
    expect(s.pwd).toBe('/does/not/exist');
    expect(s.st).toBe('755 0:0');
    expect(statSync(`${r.bundle.rootfs}/does/not/exist`).isDirectory()).toBe(true);
  });
});

describe('user, umask, rlimits, oom_score_adj, no_new_privs', () => {
  it('uid, gid and additionalGids (id and /proc/self/status agree)', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.process.user = { uid: 1000, gid: 1000, additionalGids: [2000, 5] };
        spec.process.args = ['sh', '-c', `echo "== id =="; id; echo "== st =="; grep -E '^(Uid|Gid|Groups):' /proc/self/status`];
      }),
    );
    expect(s.id).toBe('uid=1000(app) gid=1000(app) groups=5(tty),2000(extra)');
    expect(s.st.split('\n')).toEqual(['Uid:\t1000\t1000\t1000\t1000', 'Gid:\t1000\t1000\t1000\t1000', 'Groups:\t5 2000 ']);
  });

  it('umask from process.user.umask, 0022 by default', async () => {
    expect(await h.output((s) => {
      s.process.user.umask = 0o027;
      s.process.args = ['sh', '-c', 'umask'];
    })).toBe('0027\n');
    expect(await h.output(sh('umask'))).toBe('0022\n');
  });

  it('rlimits: RLIMIT_NOFILE and RLIMIT_NPROC soft/hard in /proc/self/limits and ulimit', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.process.rlimits = [
          { type: 'RLIMIT_NOFILE', soft: 512, hard: 1000 },
          { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
          { type: 'RLIMIT_CORE', soft: 0, hard: 0 },
        ];
        spec.process.args = ['sh', '-c', 'echo "== limits =="; grep -E "^Max (open files|processes|core file size)" /proc/self/limits; echo "== ulimit =="; ulimit -n; ulimit -Hn; ulimit -u'];
      }),
    );
    const rows = Object.fromEntries(s.limits.split('\n').map((l) => [l.slice(0, 26).trim(), l.slice(26).trim().split(/\s+/).slice(0, 2)]));
    expect(rows).toEqual({ 'Max core file size': ['0', '0'], 'Max processes': ['100', '200'], 'Max open files': ['512', '1000'] });
    expect(s.ulimit.split('\n')).toEqual(['512', '1000', '100']);
  });

  it('rlimits not configured are inherited from the runtime', async () => {
    const out = await h.output((spec) => {
      spec.process.rlimits = [];
      spec.process.args = ['sh', '-c', 'grep "^Max open files" /proc/self/limits'];
    });
    const f = out.slice(26).trim().split(/\s+/);
    const host = hostLimit('Max open files');
    expect([f[0], f[1]]).toEqual([host.soft, host.hard]);
  });

  it('an rlimit above the hard limit fails create with EPERM naming process.rlimits[i]; nothing is left', async () => {
    const hard = Number(hostLimit('Max open files').hard);
    const b = h.bundle((spec) => {
      spec.process.rlimits = [
        { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
        { type: 'RLIMIT_NOFILE', soft: 1024, hard: hard + 1000 },
      ];
      spec.process.args = ['true'];
    });
    const id = h.nextId();
    const err = await h.rt.run(id, { bundle: b.dir, stdio: [0, 1, 2] }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/^process\.rlimits\[1\]: setrlimit\(RLIMIT_NOFILE, soft=1024, hard=\d+\) failed: EPERM/);
    expect(existsSync(`${h.root}/${id}`)).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
  });

  it('oomScoreAdj 500 is visible in /proc/self/oom_score_adj', async () => {
    const out = await h.output((s) => {
      s.process.oomScoreAdj = 500;
      s.process.args = ['cat', '/proc/self/oom_score_adj'];
    });
    expect(out).toBe('500\n');
  });

  it('negative oomScoreAdj (needs CAP_SYS_RESOURCE, absent here) is a clear error naming process.oomScoreAdj; nothing is left', async () => {
    const b = h.bundle((s) => {
      s.process.oomScoreAdj = -500;
      s.process.args = ['true'];
    });
    const id = h.nextId();
    const err = await h.rt.run(id, { bundle: b.dir, stdio: [0, 1, 2] }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/process\.oomScoreAdj/);
    expect(err?.message).toMatch(/EACCES/);
    expect(err?.message).toMatch(/-500/);
    expect(existsSync(`${h.root}/${id}`)).toBe(false);
    expect(h.rt.list()).toEqual([]);
  });

  it('noNewPrivileges true → NoNewPrivs 1; false → 0', async () => {
    const nnp = async (v: boolean) =>
      (await h.output((s) => {
        s.process.noNewPrivileges = v;
        s.process.args = ['grep', '^NoNewPrivs:', '/proc/self/status'];
      })).trim();
    expect(await nnp(true)).toBe('NoNewPrivs:\t1');
    expect(await nnp(false)).toBe('NoNewPrivs:\t0');
  });
});

describe('capabilities', () => {
  const capsOf = async (mut: (s: OciSpecLike) => void) => {
    const b = h.bundle((s) => {
      mut(s);
      s.process.args = ['sh', '-c', CAPS_SCRIPT];
    });
    const r = await h.run(b);
    expect(r.status?.code, r.out).toBe(0);
    return { ours: parseStatus(r.out), b };
  };

  it('root: each of the five sets is exactly the configured one', async () => {
    const set = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE'];
    const { ours } = await capsOf((s) => {
      s.process.capabilities = { bounding: set, effective: set, permitted: set, inheritable: [], ambient: [] };
    });
    expect(ours).toEqual({ CapInh: capHex([]), CapPrm: capHex(set), CapEff: capHex(set), CapBnd: capHex(set), CapAmb: capHex([]), NoNewPrivs: '1' });
    expect(ours.CapEff).toBe('0000000020000421');
  });

  it('non-root with ambient caps (also inheritable and permitted): CapAmb survives execve, all sets as configured, same as runc', async () => {
    const small = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const bounding = ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const { ours, b } = await capsOf((s) => {
      s.process.user = { uid: 1000, gid: 1000 };
      s.process.noNewPrivileges = false;
      s.process.capabilities = { bounding, effective: small, permitted: small, inheritable: small, ambient: small };
    });
    expect(ours).toEqual({ CapInh: capHex(small), CapPrm: capHex(small), CapEff: capHex(small), CapBnd: capHex(bounding), CapAmb: capHex(small), NoNewPrivs: '0' });
    expect(ours.CapAmb).toBe('0000000000000420');
    expect(parseStatus(runcOutput(b))).toEqual(ours);
  });

  it('non-root with ambient CAP_NET_BIND_SERVICE can bind port 80; without it, it cannot', async () => {
    // Wait until nc either listens on port 80 (seen in /proc/net/tcp{,6}) or has exited with its error.
    const bind80 = [
      'nc -l -p 80 2>/dev/shm/err & pid=$!',
      'for i in $(seq 1 100); do',
      '  if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -qE ":0050 0+:0000 0A"; then echo listening; break; fi',
      '  if ! kill -0 $pid 2>/dev/null; then cat /dev/shm/err; break; fi',
      '  sleep 0.1',
      'done',
      'kill $pid 2>/dev/null; wait',
    ].join('\n');
    const withAmb = await h.run((s) => {
      s.process.user = { uid: 1000, gid: 1000 };
      const c = ['CAP_NET_BIND_SERVICE'];
      s.process.capabilities = { bounding: c, effective: c, permitted: c, inheritable: c, ambient: c };
      s.process.args = ['sh', '-c', bind80];
    });
    expect(withAmb.out).toBe('listening\n');
    const without = await h.run((s) => {
      s.process.user = { uid: 1000, gid: 1000 };
      const c = ['CAP_NET_BIND_SERVICE'];
      s.process.capabilities = { bounding: c, effective: c, permitted: c, inheritable: [], ambient: [] };
      s.process.args = ['sh', '-c', bind80];
    });
    expect(without.out).toBe('nc: bind: Permission denied\n');
  });

  it('the default runc spec (ambient not in inheritable: not raised) gives the same five sets as runc', async () => {
    const { ours, b } = await capsOf(() => {});
    const configured = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    expect(ours).toEqual({ CapInh: capHex([]), CapPrm: capHex(configured), CapEff: capHex(configured), CapBnd: capHex(configured), CapAmb: capHex([]), NoNewPrivs: '1' });
    expect(parseStatus(runcOutput(b))).toEqual(ours);
  });

  it('process.capabilities absent: no capabilities at all, as runc (which applies empty sets)', async () => {
    const { ours, b } = await capsOf((s) => {
      delete s.process.capabilities;
    });
    const none = capHex([]);
    expect(parseStatus(runcOutput(b))).toEqual({ CapInh: none, CapPrm: none, CapEff: none, CapBnd: none, CapAmb: none, NoNewPrivs: '1' });
    expect(ours).toEqual({ CapInh: none, CapPrm: none, CapEff: none, CapBnd: none, CapAmb: none, NoNewPrivs: '1' });
  });
});

describe('linux.sysctl', () => {
  it('net and ipc sysctls are written in the container\'s namespaces; the host keeps its values', async () => {
    const hostShmmax = readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const hostFwd = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const hostSomax = readFileSync('/proc/sys/net/core/somaxconn', 'utf8');
    const s = sections(
      await h.output((spec) => {
        spec.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '123456789', 'net/core/somaxconn': '1234' };
        spec.process.args = ['sh', '-c', 'echo "== fwd =="; cat /proc/sys/net/ipv4/ip_forward; echo "== shmmax =="; cat /proc/sys/kernel/shmmax; echo "== somax =="; cat /proc/sys/net/core/somaxconn'];
      }),
    );
    expect(s.fwd).toBe('1');
    expect(s.shmmax).toBe('123456789');
    expect(s.somax).toBe('1234');
    expect(readFileSync('/proc/sys/kernel/shmmax', 'utf8')).toBe(hostShmmax);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(hostFwd);
    expect(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')).toBe(hostSomax);
  });
});

describe('stdio and open fds', () => {
  it('stdin, stdout and stderr are the fds the caller passed', async () => {
    // No pipeline and no redirection: busybox sh would hold a pipe end or a saved copy of fd 1 meanwhile.
    const r = await h.run(sh('echo "== fds =="; ls -l /proc/$$/fd; echo "== in =="; cat; echo to-stderr >&2'), {
      stdin: 'line one\nline two\n',
      separateStderr: true,
    });
    expect(r.status?.code).toBe(0);
    const s = sections(r.out);
    expect(s.in).toBe('line one\nline two');
    expect(r.err).toBe('to-stderr\n');
    const fds = s.fds
      .split('\n')
      .filter((l) => l.includes(' -> '))
      .map((l) => /(\d+) -> (.*)$/.exec(l)!.slice(1));
    expect(fds.map((f) => f[0])).toEqual(['0', '1', '2']);
    // The container sees the host files through its own mount namespace: the same names.
    expect(fds[0][1]).toMatch(/\/\d+-in$/);
    expect(fds[1][1]).toMatch(/\/\d+-out$/);
    expect(fds[2][1]).toMatch(/\/\d+-err$/);
  });

  it('only fds 0-2 are open, even when the runtime holds an inheritable (non-CLOEXEC) fd', async () => {
    const dup = koffi.load('libc.so.6').func('int dup(int)');
    const f = openSync('/etc/hostname', 'r');
    const leaked = dup(f) as number;
    expect(leaked).toBeGreaterThan(2);
    try {
      // The fd list of the shell itself; ls's own directory fd belongs to ls, not to $$. (A lone or last
      // command would be exec'd by busybox sh in place of the shell, hence the trailing "exit".)
      const out = await h.output(sh('ls /proc/$$/fd; exit 0'));
      expect(out.trim().split('\n')).toEqual(['0', '1', '2']);
    } finally {
      closeSync(leaked);
      closeSync(f);
    }
  });
});
