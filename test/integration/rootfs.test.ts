/**
 * The container's filesystem, checked from inside: pivot_root (and --no-pivot) leave only the rootfs
 * visible, root.readonly, linux.rootfsPropagation, and every kind of mounts[] entry (bind dirs and files
 * with ro/nosuid/nodev/noexec and propagation options, tmpfs, proc, sysfs, mqueue, devpts, cgroup).
 * The mount table of a default container is compared with runc's for the same bundle.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness, hostMountsUnder, mountAt, parseMountinfo, sections, sh } from './harness.js';

const h = new Harness('rootfs');
/** Host directory bind-mounted into containers: hello.txt, run.sh (executable), a char device, sub/ (a tmpfs). */
let src: string;
/** A host directory that is its own shared mount (peer group on the host). */
let shared: string;
let sharedPeer: string;
let hostFile: string;

beforeAll(() => {
  src = mkdtempSync('/tmp/cordon-it-rootfs-src-');
  chmodSync(src, 0o755);
  writeFileSync(`${src}/hello.txt`, 'hello from the host\n');
  writeFileSync(`${src}/run.sh`, '#!/bin/sh\necho ran\n');
  chmodSync(`${src}/run.sh`, 0o755);
  execFileSync('mknod', [`${src}/nulldev`, 'c', '1', '3']);
  chmodSync(`${src}/nulldev`, 0o666);
  mkdirSync(`${src}/sub`);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'cordon-it-sub', `${src}/sub`]);
  writeFileSync(`${src}/sub/in-sub.txt`, 'sub\n');

  shared = mkdtempSync('/tmp/cordon-it-rootfs-shared-');
  execFileSync('mount', ['--bind', shared, shared]);
  execFileSync('mount', ['--make-shared', shared]);
  const line = mountAt(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')), shared);
  sharedPeer = line?.optional.find((o) => o.startsWith('shared:'))?.slice('shared:'.length) ?? 'none';

  hostFile = `${mkdtempSync('/tmp/cordon-it-rootfs-file-')}/injected.conf`;
  writeFileSync(hostFile, 'key=value\n');
});

afterAll(async () => {
  await h.cleanup();
  for (const m of [`${src}/sub`, shared]) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // not mounted
    }
  }
  rmSync(src, { recursive: true, force: true });
  rmSync(shared, { recursive: true, force: true });
  rmSync(hostFile.replace(/\/[^/]+$/, ''), { recursive: true, force: true });
});

describe('entering the rootfs', () => {
  it('pivot_root: "/" is the bundle rootfs and no host path is visible', async () => {
    const r = await h.run(sh('echo "== mi =="; cat /proc/self/mountinfo; echo "== ls =="; ls /; echo "== work =="; ls -d /work /run/cordon 2>&1 | wc -l; test -e /work && echo visible || echo absent'));
    expect(r.status?.code).toBe(0);
    const s = sections(r.out);
    const mounts = parseMountinfo(s.mi);
    const root = mountAt(mounts, '/');
    expect(root?.root).toBe(r.bundle.rootfs);
    // "/" is the first mount of the namespace and every other mount hangs below it.
    expect(mounts[0].mountPoint).toBe('/');
    const ids = new Set(mounts.map((m) => m.id));
    for (const m of mounts.slice(1)) expect(ids.has(m.parent), m.mountPoint).toBe(true);
    // Nothing of the host's mount table is left (the old root was detached).
    for (const m of mounts) expect(m.mountPoint, m.mountPoint).toMatch(/^\/(proc|dev|sys)?(\/|$)/);
    expect(s.ls.split('\n')).toEqual(readdir(r.bundle.rootfs));
    expect(s.work.split('\n').at(-1)).toBe('absent');
  });

  it('no-pivot (MS_MOVE + chroot): "/" is still the rootfs and host paths are not reachable', async () => {
    const r = await h.run(sh('echo "== mi =="; cat /proc/self/mountinfo; echo "== ls =="; ls /; echo "== work =="; test -e /work && echo visible || echo absent; echo "== up =="; cd /../../..; ls'), { noPivot: true });
    expect(r.status?.code).toBe(0);
    const s = sections(r.out);
    const mounts = parseMountinfo(s.mi);
    expect(mountAt(mounts, '/')?.root).toBe(r.bundle.rootfs);
    expect(s.ls.split('\n')).toEqual(readdir(r.bundle.rootfs));
    expect(s.work).toBe('absent');
    expect(s.up.split('\n')).toEqual(readdir(r.bundle.rootfs));
  });

  it('root.readonly true: "/" is mounted ro and writing fails with EROFS', async () => {
    const r = await h.run((spec) => {
      spec.root.readonly = true;
      spec.process.args = ['sh', '-c', 'echo "== opt =="; head -1 /proc/self/mountinfo | cut -d" " -f6; echo "== touch =="; touch /x 2>&1; echo "rc=$?"'];
    });
    const s = sections(r.out);
    expect(s.opt.split(',')[0]).toBe('ro');
    expect(s.touch).toBe("touch: /x: Read-only file system\nrc=1");
  });

  it('root.readonly false: "/" is rw and a file written inside shows up in the bundle', async () => {
    const r = await h.run((spec) => {
      spec.root.readonly = false;
      spec.process.args = ['sh', '-c', 'echo "== opt =="; head -1 /proc/self/mountinfo | cut -d" " -f6; echo "== touch =="; echo written > /x; echo "rc=$?"'];
    });
    const s = sections(r.out);
    expect(s.opt.split(',')[0]).toBe('rw');
    expect(s.touch).toBe('rc=0');
    expect(readFileSync(`${r.bundle.rootfs}/x`, 'utf8')).toBe('written\n');
  });
});

describe('linux.rootfsPropagation', () => {
  const rootLine = async (prop: string | undefined) => {
    const out = await h.output((spec) => {
      spec.process.args = ['sh', '-c', 'head -1 /proc/self/mountinfo'];
      if (prop !== undefined) spec.linux.rootfsPropagation = prop;
    });
    return parseMountinfo(out)[0];
  };

  it('rprivate: "/" has no propagation fields', async () => {
    const l = await rootLine('rprivate');
    expect(l.mountPoint).toBe('/');
    expect(l.optional).toEqual([]);
  });

  it('rshared: "/" is in a (new) peer group', async () => {
    const l = await rootLine('rshared');
    expect(l.optional).toHaveLength(1);
    expect(l.optional[0]).toMatch(/^shared:\d+$/);
  });

  it('runbindable: refused like runc (the rootfs cannot be bind-mounted under an unbindable "/"), nothing left', async () => {
    const b = h.bundle((spec) => {
      spec.linux.rootfsPropagation = 'runbindable';
      spec.process.args = ['true'];
    });
    const id = h.nextId();
    await expect(h.rt.run(id, { bundle: b.dir, stdio: [0, 1, 2] })).rejects.toThrow(/^root\.path: mount\(.*MS_BIND\|MS_REC\) failed: EINVAL/);
    expect(existsSync(`${h.root}/${id}`)).toBe(false);
    expect(hostMountsUnder(b.dir)).toEqual([]);
  });

  it('absent (runc default rslave): the host\'s shared mounts arrive as slaves, never as peers', async () => {
    const out = await h.output((spec) => {
      spec.mounts.push({ destination: '/mnt/s', type: 'bind', source: shared, options: ['rbind'] });
      spec.process.args = ['sh', '-c', 'cat /proc/self/mountinfo'];
    });
    const mounts = parseMountinfo(out);
    expect(mounts[0].optional).toEqual([]);
    expect(mountAt(mounts, '/mnt/s')?.optional).toEqual([`master:${sharedPeer}`]);
    for (const m of mounts) expect(m.optional.filter((o) => o.startsWith('shared:')), m.mountPoint).toEqual([]);
  });
});

describe('mounts[]', () => {
  it('bind of a host dir with rbind,ro: readable, not writable, submounts carried', async () => {
    const r = await h.run((spec) => {
      spec.mounts.push({ destination: '/mnt/ro', type: 'bind', source: src, options: ['rbind', 'ro'] });
      spec.process.args = ['sh', '-c', 'echo "== cat =="; cat /mnt/ro/hello.txt; echo "== touch =="; touch /mnt/ro/new 2>&1; echo "rc=$?"; echo "== sub =="; cat /mnt/ro/sub/in-sub.txt; echo "== mi =="; cat /proc/self/mountinfo'];
    });
    const s = sections(r.out);
    expect(s.cat).toBe('hello from the host');
    expect(s.touch).toBe('touch: /mnt/ro/new: Read-only file system\nrc=1');
    expect(s.sub).toBe('sub');
    const mounts = parseMountinfo(s.mi);
    const ro = mountAt(mounts, '/mnt/ro');
    expect(ro?.root).toBe(src);
    expect(ro?.options).toContain('ro');
    expect(mountAt(mounts, '/mnt/ro/sub')?.fsType).toBe('tmpfs');
    // Nothing was created in the source.
    expect(readdir(src)).toEqual(['hello.txt', 'nulldev', 'run.sh', 'sub']);
  });

  it('bind without rbind does not carry submounts', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.mounts.push({ destination: '/mnt/flat', type: 'bind', source: src, options: ['bind'] });
        spec.process.args = ['sh', '-c', 'echo "== sub =="; ls -A /mnt/flat/sub | wc -l; echo "== mi =="; grep -c " /mnt/flat/sub " /proc/self/mountinfo || true'];
      }),
    );
    expect(s.sub).toBe('0');
    expect(s.mi).toBe('0');
  });

  it('nosuid,nodev,noexec: shown as mount options and enforced (exec EACCES, device open EACCES)', async () => {
    const r = await h.run((spec) => {
      spec.mounts.push({ destination: '/mnt/nx', type: 'bind', source: src, options: ['bind', 'nosuid', 'nodev', 'noexec'] });
      spec.mounts.push({ destination: '/mnt/x', type: 'bind', source: src, options: ['bind'] });
      spec.process.args = [
        'sh',
        '-c',
        'echo "== mi =="; cat /proc/self/mountinfo; echo "== nx =="; /mnt/nx/run.sh >/dev/null 2>&1; echo "rc=$?"; echo "== x =="; /mnt/x/run.sh; echo "rc=$?"; echo "== nodev =="; cat /mnt/nx/nulldev >/dev/null 2>&1; echo "rc=$?"; echo "== dev =="; cat /mnt/x/nulldev; echo "rc=$?"',
      ];
    });
    const s = sections(r.out);
    const mounts = parseMountinfo(s.mi);
    const nx = mountAt(mounts, '/mnt/nx');
    for (const o of ['nosuid', 'nodev', 'noexec']) expect(nx?.options, o).toContain(o);
    const x = mountAt(mounts, '/mnt/x');
    for (const o of ['nosuid', 'nodev', 'noexec']) expect(x?.options, o).not.toContain(o);
    expect(s.nx).toBe('rc=126');
    expect(s.x).toBe('ran\nrc=0');
    expect(s.nodev).toBe('rc=1');
    expect(s.dev).toBe('rc=0');
  });

  it('bind of a single file: the destination is created as a file and the mount is ro', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.mounts.push({ destination: '/etc/injected.conf', type: 'bind', source: hostFile, options: ['bind', 'ro'] });
        spec.process.args = ['sh', '-c', 'echo "== cat =="; cat /etc/injected.conf; echo "== type =="; stat -c %F /etc/injected.conf; echo "== w =="; (echo x >> /etc/injected.conf) 2>&1; echo "rc=$?"; echo "== mi =="; grep " /etc/injected.conf " /proc/self/mountinfo'];
      }),
    );
    expect(s.cat).toBe('key=value');
    expect(s.type).toBe('regular file');
    expect(s.w).toBe("sh: can't create /etc/injected.conf: Read-only file system\nrc=1");
    const m = parseMountinfo(s.mi)[0];
    expect(m.root).toBe(hostFile);
    expect(m.options[0]).toBe('ro');
    expect(readFileSync(hostFile, 'utf8')).toBe('key=value\n');
  });

  it('propagation options on binds: rslave → master:N of the host peer group, rprivate → none', async () => {
    const out = await h.output((spec) => {
      spec.mounts.push({ destination: '/mnt/slave', type: 'bind', source: shared, options: ['rbind', 'rslave'] });
      spec.mounts.push({ destination: '/mnt/private', type: 'bind', source: shared, options: ['rbind', 'rprivate'] });
      spec.mounts.push({ destination: '/mnt/unbindable', type: 'bind', source: shared, options: ['rbind', 'runbindable'] });
      spec.process.args = ['sh', '-c', 'cat /proc/self/mountinfo'];
    });
    const mounts = parseMountinfo(out);
    expect(sharedPeer).toMatch(/^\d+$/);
    expect(mountAt(mounts, '/mnt/slave')?.optional).toEqual([`master:${sharedPeer}`]);
    expect(mountAt(mounts, '/mnt/private')?.optional).toEqual([]);
    expect(mountAt(mounts, '/mnt/unbindable')?.optional).toEqual(['unbindable']);
  });

  it('propagation option rshared on a bind keeps the mount shared (runc: "shared:M master:N")', async () => {
    // With linux.rootfsPropagation absent runc does not re-apply rslave after pivot_root, so the bind's own
    // rshared survives (shared with a new peer group, and still a slave of the host's group).
    const out = await h.output((spec) => {
      spec.mounts.push({ destination: '/mnt/shared', type: 'bind', source: shared, options: ['rbind', 'rshared'] });
      spec.process.args = ['sh', '-c', 'cat /proc/self/mountinfo'];
    });
    const opt = mountAt(parseMountinfo(out), '/mnt/shared')?.optional ?? [];
    expect(opt).toHaveLength(2);
    expect(opt[0]).toMatch(/^shared:\d+$/);
    expect(opt[1]).toBe(`master:${sharedPeer}`);
  });

  it('propagation option rshared with linux.rootfsPropagation rprivate: a peer group of its own', async () => {
    const out = await h.output((spec) => {
      spec.linux.rootfsPropagation = 'rprivate';
      spec.mounts.push({ destination: '/mnt/shared', type: 'bind', source: shared, options: ['rbind', 'rshared'] });
      spec.process.args = ['sh', '-c', 'cat /proc/self/mountinfo'];
    });
    const opt = mountAt(parseMountinfo(out), '/mnt/shared')?.optional ?? [];
    expect(opt).toHaveLength(1);
    expect(opt[0]).toMatch(/^shared:\d+$/);
  });

  it('tmpfs with size and mode: options in mountinfo, mode on the dir, size enforced', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.mounts.push({ destination: '/mnt/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=1770'] });
        spec.process.args = ['sh', '-c', 'echo "== mode =="; stat -c %a /mnt/tmp; echo "== mi =="; grep " /mnt/tmp " /proc/self/mountinfo; echo "== fill =="; dd if=/dev/zero of=/mnt/tmp/f bs=4k count=512 2>&1 | grep -o "No space left on device"; echo "== size =="; stat -c %s /mnt/tmp/f'];
      }),
    );
    expect(s.mode).toBe('1770');
    const m = parseMountinfo(s.mi)[0];
    expect(m.fsType).toBe('tmpfs');
    expect(m.options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
    expect(m.superOptions).toEqual(expect.arrayContaining(['size=1024k', 'mode=1770']));
    expect(s.fill).toBe('No space left on device');
    expect(Number(s.size)).toBe(1024 * 1024);
  });

  it('proc, sysfs, mqueue, devpts of the default spec: types, options, and each is the container\'s own', async () => {
    const s = sections(await h.output(sh('echo "== mi =="; cat /proc/self/mountinfo; echo "== p1 =="; cat /proc/1/comm; echo "== net =="; ls /sys/class/net; echo "== pts =="; ls /dev/pts')));
    const mounts = parseMountinfo(s.mi);
    const proc = mountAt(mounts, '/proc');
    expect([proc?.fsType, proc?.source, proc?.root]).toEqual(['proc', 'proc', '/']);
    const sys = mountAt(mounts, '/sys');
    expect([sys?.fsType, sys?.options.slice(0, 4)]).toEqual(['sysfs', ['ro', 'nosuid', 'nodev', 'noexec']]);
    const mq = mountAt(mounts, '/dev/mqueue');
    expect([mq?.fsType, mq?.options.slice(0, 4)]).toEqual(['mqueue', ['rw', 'nosuid', 'nodev', 'noexec']]);
    const pts = mountAt(mounts, '/dev/pts');
    expect(pts?.fsType).toBe('devpts');
    expect(pts?.superOptions).toEqual(expect.arrayContaining(['gid=5', 'mode=620', 'ptmxmode=666']));
    // proc shows the container's pid namespace, sysfs its net namespace, devpts is a new instance.
    expect(s.p1).toBe('sh');
    expect(s.net).toBe('lo');
    expect(s.pts).toBe('ptmx');
  });

  it('cgroup: /sys/fs/cgroup lists the host\'s hierarchies, read-only', async () => {
    const s = sections(await h.output(sh('echo "== ls =="; ls /sys/fs/cgroup; echo "== mk =="; mkdir /sys/fs/cgroup/pids/cordon-x 2>&1; echo "rc=$?"; echo "== mi =="; cat /proc/self/mountinfo')));
    const host = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
      .filter((m) => (m.fsType === 'cgroup' || m.fsType === 'cgroup2') && /^\/sys\/fs\/cgroup\/[^/]+$/.test(m.mountPoint))
      .flatMap((m) => {
        const name = m.mountPoint.slice('/sys/fs/cgroup/'.length);
        return name.includes(',') ? [name, ...name.split(',')] : [name];
      });
    expect(host.length).toBeGreaterThan(0);
    expect(s.ls.split('\n')).toEqual([...new Set(host)].sort());
    expect(s.mk).toBe("mkdir: can't create directory '/sys/fs/cgroup/pids/cordon-x': Read-only file system\nrc=1");
    const mounts = parseMountinfo(s.mi);
    expect(mountAt(mounts, '/sys/fs/cgroup')?.fsType).toBe('tmpfs');
    for (const name of host.filter((n) => !n.includes(','))) {
      const m = mountAt(mounts, `/sys/fs/cgroup/${name}`);
      expect(m?.fsType, name).toMatch(/^cgroup2?$/);
      expect(m?.options[0], name).toBe('ro');
    }
  });

  it('cgroup: the host\'s cgroup2 options are left alone (a cgroup2 mount outside a cgroup namespace would re-apply its own: nsdelegate gone)', async () => {
    const v2 = () => parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.fsType === 'cgroup2').map((m) => `${m.mountPoint} ${m.superOptions.join(',')}`);
    const before = v2();
    expect(before.length).toBeGreaterThan(0);
    const s = sections(await h.output(sh('echo "== mi =="; cat /proc/self/mountinfo')));
    expect(v2()).toEqual(before);
    // The container still sees the unified hierarchy, read-only.
    const inside = parseMountinfo(s.mi).filter((m) => m.fsType === 'cgroup2');
    expect(inside.length).toBe(before.length);
    for (const m of inside) expect(m.options[0], m.mountPoint).toBe('ro');
  });
});

describe('the same bundle under runc', () => {
  it('mount table of a container without a cgroup mount matches runc\'s, mount for mount', async () => {
    const b = h.bundle((spec) => {
      spec.mounts = spec.mounts.filter((m) => m.type !== 'cgroup');
      spec.process.args = ['cat', '/proc/self/mountinfo'];
    });
    const ours = (await h.run(b)).out;
    const runcRoot = mkdtempSync('/tmp/cordon-it-rootfs-runc-');
    let theirs: string;
    try {
      theirs = execFileSync('runc', ['--root', runcRoot, 'run', '-b', b.dir, `runc-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    } finally {
      rmSync(runcRoot, { recursive: true, force: true });
    }
    const shape = (text: string) => parseMountinfo(text).map((m) => [m.mountPoint, m.root, m.fsType, m.source, m.options.join(','), m.optional.join(' '), m.superOptions.join(',')].join(' | '));
    expect(shape(ours)).toEqual(shape(theirs));
    expect(hostMountsUnder(b.dir)).toEqual([]);
  });
});

function readdir(dir: string): string[] {
  return execFileSync('ls', [dir]).toString().trim().split('\n');
}
