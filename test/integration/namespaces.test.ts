/**
 * Namespaces, checked from inside real containers (what the container's process sees in /proc) and from
 * the host (/proc/PID/ns, uid_map, status): pid, uts, ipc, network, mount, cgroup, user with id maps, and
 * joining another container's namespaces by path.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { makeUsernsRootfs } from '../fixtures/bundle.js';
import { Harness, hostNs, parseStatus, pidExists, sections, sh } from './harness.js';

const h = new Harness('ns');
afterAll(() => h.cleanup());

const NS_NAMES = ['pid', 'uts', 'ipc', 'net', 'mnt', 'cgroup', 'user'] as const;
const PRINT_NS = NS_NAMES.map((n) => `echo "${n}=$(readlink /proc/self/ns/${n})"`).join('; ');

function nsMap(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => l.split('=') as [string, string]));
}

describe('namespaces created for the container', () => {
  it('pid, uts, ipc, net and mnt are new; cgroup and user are the host\'s when not requested', async () => {
    const out = await h.output(sh(PRINT_NS));
    const inside = nsMap(out);
    for (const n of ['pid', 'uts', 'ipc', 'net', 'mnt']) expect(inside[n], n).not.toBe(hostNs('self', n));
    for (const n of ['cgroup', 'user']) expect(inside[n], n).toBe(hostNs('self', n));
  });

  it('pid: the process is pid 1 and sees only its own pid namespace', async () => {
    // The glob is expanded by pid 1 itself, before any child exists.
    const s = sections(await h.output(sh('echo "== self =="; echo $$; echo "== ppid =="; grep PPid /proc/self/status; echo "== pids =="; echo /proc/[0-9]*')));
    expect(s.self).toBe('1');
    // grep is a child of the shell, i.e. of pid 1.
    expect(s.ppid).toBe('PPid:\t1');
    expect(s.pids).toBe('/proc/1');
  });

  it('uts: hostname and domainname come from the config and the host\'s stay unchanged', async () => {
    const before = osHostname();
    const s = sections(
      await h.output((spec) => {
        spec.process.args = ['sh', '-c', 'echo "== h =="; hostname; echo "== kh =="; cat /proc/sys/kernel/hostname; echo "== dn =="; cat /proc/sys/kernel/domainname'];
        spec.hostname = 'box-one';
        spec.domainname = 'example.test';
      }),
    );
    expect(s.h).toBe('box-one');
    expect(s.kh).toBe('box-one');
    expect(s.dn).toBe('example.test');
    expect(osHostname()).toBe(before);
    expect(readFileSync('/proc/sys/kernel/domainname', 'utf8').trim()).not.toBe('example.test');
  });

  it('ipc: a System V segment of the host is not visible inside', async () => {
    const made = /Shared memory id: (\d+)/.exec(execFileSync('ipcmk', ['-M', '4096']).toString());
    expect(made).not.toBeNull();
    const shmid = made![1];
    try {
      const hostShm = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
      expect(hostShm).toContain(shmid);
      const s = sections(await h.output(sh('echo "== ns =="; readlink /proc/self/ns/ipc; echo "== shm =="; wc -l < /proc/sysvipc/shm')));
      expect(s.ns).not.toBe(hostNs('self', 'ipc'));
      // Only the header line: the container's ipc namespace starts empty.
      expect(s.shm.trim()).toBe('1');
    } finally {
      execFileSync('ipcrm', ['-m', shmid]);
    }
  });

  it('network: only lo, and it is up', async () => {
    const s = sections(
      await h.output(
        sh('echo "== ifs =="; ls /sys/class/net; echo "== flags =="; cat /sys/class/net/lo/flags; echo "== dev =="; tail -n +3 /proc/net/dev | cut -d: -f1; echo "== ns =="; readlink /proc/self/ns/net'),
      ),
    );
    expect(s.ifs).toBe('lo');
    // IFF_UP (0x1) | IFF_LOOPBACK (0x8); a down loopback reads 0x8.
    expect(s.flags).toBe('0x9');
    expect(s.dev.trim()).toBe('lo');
    expect(s.ns).not.toBe(hostNs('self', 'net'));
  });

  it('network: loopback carries traffic (TCP over 127.0.0.1 inside the container)', async () => {
    // Retry the connect until the listener is up (no fixed sleep: CI machines are slow at times). The
    // listener's stdin must stay open: busybox nc -l quits at stdin EOF, sometimes before it read the socket.
    const out = await h.output(sh('sleep 3 | nc -l -p 7777 > /dev/shm/got & for i in $(seq 1 50); do echo ping-lo | nc 127.0.0.1 7777 2>/dev/null; sleep 0.1; [ -s /dev/shm/got ] && break; done; wait; cat /dev/shm/got'));
    expect(out).toBe('ping-lo\n');
  });

  it('mount: the container\'s mounts stay in its namespace', async () => {
    const hostBefore = readFileSync('/proc/self/mountinfo', 'utf8');
    const s = sections(await h.output(sh('echo "== ns =="; readlink /proc/self/ns/mnt; echo "== n =="; wc -l < /proc/self/mountinfo')));
    expect(s.ns).not.toBe(hostNs('self', 'mnt'));
    expect(Number(s.n)).toBeGreaterThan(5);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(hostBefore);
  });

  it('cgroup: without a cgroup namespace /proc/self/cgroup shows the host paths of its own cgroups', async () => {
    const out = await h.output(sh('cat /proc/self/cgroup'));
    // The container is in cgroups of its own (named after its id, as runc), seen with their full host paths.
    const lines = out.trim().split('\n');
    expect(lines.length).toBe(readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').length);
    const own = lines.filter((l) => /:\/(?:.+\/)?ns-\d+-\d+$/.test(l));
    expect(own.length, out).toBeGreaterThanOrEqual(lines.length - 1);
  });

  it('cgroup: with a cgroup namespace every hierarchy path is "/"', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.linux.namespaces!.push({ type: 'cgroup' });
        spec.process.args = ['sh', '-c', 'echo "== cg =="; cat /proc/self/cgroup; echo "== ns =="; readlink /proc/self/ns/cgroup; echo "== mem =="; grep " /sys/fs/cgroup/memory " /proc/self/mountinfo | cut -d" " -f4'];
      }),
    );
    const lines = s.cg.split('\n');
    expect(lines.length).toBe(readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n').length);
    for (const l of lines) expect(l, l).toMatch(/^\d+:[^:]*:\/$/);
    expect(s.ns).not.toBe(hostNs('self', 'cgroup'));
    // The memory hierarchy is mounted fresh in the namespace: its root is the namespace's root.
    expect(s.mem).toBe('/');
  });
});

describe('user namespace with id mappings', () => {
  const MAP = { containerID: 0, hostID: 100000, size: 65536 };

  it('inside: root with the configured map; host: the same map and uid 100000 (create, state, start, delete)', async () => {
    const b = h.bundle((spec) => {
      spec.linux.namespaces!.push({ type: 'user' });
      spec.linux.uidMappings = [MAP];
      spec.linux.gidMappings = [MAP];
      spec.process.args = [
        'sh',
        '-c',
        'echo "== id =="; id; echo "== uidmap =="; cat /proc/self/uid_map; echo "== gidmap =="; cat /proc/self/gid_map; echo "== userns =="; readlink /proc/self/ns/user; echo "== null =="; stat -c "%F %t:%T" /dev/null; echo "== write =="; echo hi > /tmp/w && stat -c "%u:%g" /tmp/w',
      ];
      spec.root.readonly = false;
    }, makeUsernsRootfs(100000));
    const id = h.nextId();
    const outPath = h.file('out');
    const fd = openSync(outPath, 'w');
    let created;
    try {
      created = await h.rt.create(id, { bundle: b.dir, stdio: [fd, fd, fd] });
    } finally {
      closeSync(fd);
    }
    const st = h.rt.stateOf(id);
    expect(st.status).toBe('created');
    const pid = st.pid;
    expect(pid).toBe(created.init.pid);
    // From the host, while the container waits at its exec fifo.
    const hostMap = readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim().split(/\s+/).map(Number);
    expect(hostMap).toEqual([0, 100000, 65536]);
    expect(readFileSync(`/proc/${pid}/gid_map`, 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, 100000, 65536]);
    const status = parseStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
    expect(status.Uid).toBe('100000\t100000\t100000\t100000');
    expect(status.Gid).toBe('100000\t100000\t100000\t100000');
    expect(hostNs(pid, 'user')).not.toBe(hostNs('self', 'user'));

    await h.rt.start(id);
    const exit = await created.init.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(h.rt.stateOf(id).status).toBe('stopped');
    await h.rt.delete(id);
    expect(pidExists(pid)).toBe(false);

    const s = sections(readFileSync(outPath, 'utf8'));
    // No supplementary groups (as runc: busybox id prints no groups= then).
    expect(s.id).toBe('uid=0(root) gid=0(root)');
    expect(s.uidmap.trim().split(/\s+/).map(Number)).toEqual([0, 100000, 65536]);
    expect(s.gidmap.trim().split(/\s+/).map(Number)).toEqual([0, 100000, 65536]);
    expect(s.userns).not.toBe(hostNs('self', 'user'));
    // Device nodes cannot be made in a user namespace: the host's nodes are bind-mounted.
    expect(s.null).toBe('character special file 1:3');
    // A file the container's root creates is owned by 0:0 inside and by host uid/gid 100000 outside.
    expect(s.write).toBe('0:0');
    const st2 = statSync(`${b.rootfs}/tmp/w`);
    expect([st2.uid, st2.gid]).toEqual([100000, 100000]);
  });
});

describe('joining namespaces by path', () => {
  it('B joins A\'s network and uts namespaces: same inode, A\'s hostname', async () => {
    const a = h.bundle((spec) => {
      spec.process.args = ['sleep', '30'];
      spec.hostname = 'container-a';
    });
    const idA = h.nextId();
    const nullFd = openSync('/dev/null', 'r+');
    try {
      await h.rt.run(idA, { bundle: a.dir, stdio: [nullFd, nullFd, nullFd], detach: true });
    } finally {
      closeSync(nullFd);
    }
    try {
      const stA = h.rt.stateOf(idA);
      expect(stA.status).toBe('running');
      const pidA = stA.pid;
      const s = sections(
        await h.output((spec) => {
          delete spec.hostname;
          spec.linux.namespaces = [
            { type: 'pid' },
            { type: 'ipc' },
            { type: 'mount' },
            { type: 'network', path: `/proc/${pidA}/ns/net` },
            { type: 'uts', path: `/proc/${pidA}/ns/uts` },
          ];
          spec.process.args = ['sh', '-c', 'echo "== host =="; hostname; echo "== net =="; readlink /proc/self/ns/net; echo "== uts =="; readlink /proc/self/ns/uts; echo "== ipc =="; readlink /proc/self/ns/ipc'];
        }),
      );
      expect(s.host).toBe('container-a');
      expect(s.net).toBe(hostNs(pidA, 'net'));
      expect(s.uts).toBe(hostNs(pidA, 'uts'));
      expect(s.net).not.toBe(hostNs('self', 'net'));
      // The ipc namespace was not joined: B has its own.
      expect(s.ipc).not.toBe(hostNs(pidA, 'ipc'));
    } finally {
      await h.rt.delete(idA, { force: true });
    }
  });
});
