/**
 * /dev and the restricted /proc and /sys paths, checked from inside: the default /dev a config without a
 * /dev mount gets (tmpfs, runc's six device nodes, pts/ptmx, shm, the fd symlinks), linux.devices
 * entries (type, numbers, mode, owner), linux.maskedPaths and linux.readonlyPaths, and what happens when
 * the config leaves those two lists out (nothing is masked: cordon, like runc, adds no defaults).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Harness, mountAt, parseMountinfo, sections, sh } from './harness.js';
import type { OciSpecLike } from './harness.js';

const h = new Harness('dev');
afterAll(() => h.cleanup());

/** `stat` of each path as "path|type|major:minor (hex)|mode|uid:gid". */
const STAT = (paths: string[]) => `stat -c '%n|%F|%t:%T|%a|%u:%g' ${paths.join(' ')}`;

/** Give the container CAP_NET_ADMIN, so a write to a net.* sysctl can succeed when /proc/sys is writable. */
const withNetAdmin = (s: OciSpecLike) => {
  const c = s.process.capabilities!;
  for (const set of [c.bounding!, c.effective!, c.permitted!]) set.push('CAP_NET_ADMIN');
};

const withoutDevMounts = (s: OciSpecLike) => {
  s.mounts = s.mounts.filter((m) => m.destination !== '/dev' && m.destination !== '/dev/pts' && m.destination !== '/dev/shm');
};

describe('default /dev (config without a /dev mount)', () => {
  it('is a tmpfs with runc\'s device nodes, devpts, shm and the fd symlinks', async () => {
    const r = await h.run((spec) => {
      withoutDevMounts(spec);
      spec.process.args = [
        'sh',
        '-c',
        [
          'echo "== nodes =="',
          STAT(['/dev/null', '/dev/zero', '/dev/full', '/dev/tty', '/dev/random', '/dev/urandom']),
          'echo "== links =="',
          'for l in fd stdin stdout stderr ptmx; do echo "$l -> $(readlink /dev/$l)"; done',
          'echo "== ls =="',
          'ls -A /dev',
          'echo "== mi =="',
          'cat /proc/self/mountinfo',
          'echo "== use =="',
          'echo hi > /dev/null && head -c 4 /dev/zero | wc -c && head -c 8 /dev/urandom | wc -c',
          'echo "== full =="',
          '(echo x > /dev/full) 2>&1',
          'echo "== ptmx =="',
          'stat -c "%F %t:%T" /dev/pts/ptmx',
        ].join('; '),
      ];
    });
    expect(r.status?.code).toBe(0);
    const s = sections(r.out);
    expect(s.nodes.split('\n')).toEqual([
      '/dev/null|character special file|1:3|666|0:0',
      '/dev/zero|character special file|1:5|666|0:0',
      '/dev/full|character special file|1:7|666|0:0',
      '/dev/tty|character special file|5:0|666|0:0',
      '/dev/random|character special file|1:8|666|0:0',
      '/dev/urandom|character special file|1:9|666|0:0',
    ]);
    expect(s.links.split('\n')).toEqual(['fd -> /proc/self/fd', 'stdin -> /proc/self/fd/0', 'stdout -> /proc/self/fd/1', 'stderr -> /proc/self/fd/2', 'ptmx -> pts/ptmx']);
    const mounts = parseMountinfo(s.mi);
    const dev = mountAt(mounts, '/dev');
    expect([dev?.fsType, dev?.options, dev?.superOptions]).toEqual(['tmpfs', ['rw', 'nosuid'], ['rw', 'size=65536k', 'mode=755']]);
    const pts = mountAt(mounts, '/dev/pts');
    expect([pts?.fsType, pts?.options]).toEqual(['devpts', ['rw', 'nosuid', 'noexec', 'relatime']]);
    expect(pts?.superOptions).toEqual(expect.arrayContaining(['gid=5', 'mode=620', 'ptmxmode=666']));
    const shm = mountAt(mounts, '/dev/shm');
    expect([shm?.fsType, shm?.source, shm?.options]).toEqual(['tmpfs', 'shm', ['rw', 'nosuid', 'nodev', 'noexec', 'relatime']]);
    expect(shm?.superOptions).toEqual(['rw', 'size=65536k']);
    // /dev/mqueue of the default spec is mounted on the default /dev, not hidden under it.
    expect(mountAt(mounts, '/dev/mqueue')?.parent).toBe(dev?.id);
    expect(s.use).toBe('4\n8');
    expect(s.full).toBe("sh: write error: No space left on device");
    expect(s.ptmx).toBe('character special file 5:2');
    // Nothing but the default set (and /dev/core when /proc/kcore exists: runc's rule).
    const expected = ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'];
    expect(s.ls.split('\n').filter((n) => n !== 'core')).toEqual(expected);
  });

  it('/dev/core exists only when /proc/kcore exists (runc creates the link only then)', async () => {
    const s = sections(await h.output(sh('echo "== core =="; ls -A /dev | grep -c "^core$" || true; echo "== kcore =="; test -e /proc/kcore && echo yes || echo no')));
    expect(s.core).toBe(s.kcore === 'yes' ? '1' : '0');
  });

  it('the default spec\'s own /dev tmpfs gets the same nodes', async () => {
    const out = await h.output(sh(STAT(['/dev/null', '/dev/tty', '/dev/urandom'])));
    expect(out.trim().split('\n')).toEqual(['/dev/null|character special file|1:3|666|0:0', '/dev/tty|character special file|5:0|666|0:0', '/dev/urandom|character special file|1:9|666|0:0']);
  });
});

describe('linux.devices', () => {
  it('nodes appear with their type, numbers, mode and owner (nested dirs created)', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.linux.devices = [
          { path: '/dev/mydev', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 1000 },
          { path: '/dev/net/tun', type: 'c', major: 10, minor: 200 },
          { path: '/dev/myblk', type: 'b', major: 7, minor: 0, fileMode: 0o600, uid: 0, gid: 6 },
          { path: '/dev/myfifo', type: 'p', fileMode: 0o620 },
          { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o600 },
        ];
        spec.process.args = ['sh', '-c', `echo "== st =="; ${STAT(['/dev/mydev', '/dev/net/tun', '/dev/myblk', '/dev/myfifo', '/dev/null'])}; echo "== net =="; stat -c '%F|%a' /dev/net; echo "== use =="; (echo data > /dev/mydev) 2>&1; true`];
      }),
    );
    expect(s.st.split('\n')).toEqual([
      '/dev/mydev|character special file|1:3|640|1000:1000',
      // 10:200 in hex; fileMode absent → 0666 (runc's default).
      '/dev/net/tun|character special file|a:c8|666|0:0',
      '/dev/myblk|block special file|7:0|600|0:6',
      '/dev/myfifo|fifo|0:0|620|0:0',
      // A configured device replaces the default node of the same path.
      '/dev/null|character special file|1:3|600|0:0',
    ]);
    expect(s.net).toBe('directory|755');
    // The process is root without CAP_DAC_OVERRIDE: mode 0640 owned by 1000 keeps it out.
    expect(s.use).toBe("sh: can't create /dev/mydev: Permission denied");
  });
});

describe('linux.maskedPaths and linux.readonlyPaths', () => {
  it('masked files read empty, a masked dir is an empty read-only tmpfs; /proc/sys is read-only', async () => {
    const r = await h.run((spec) => {
      withNetAdmin(spec);
      spec.process.args = ['sh', '-c',
        [
          'echo "== keys =="; cat /proc/keys | wc -c',
          'echo "== timer =="; cat /proc/timer_list | wc -c',
          'echo "== fw =="; ls -A /sys/firmware | wc -l',
          'echo "== fwtouch =="; touch /sys/firmware/x 2>&1',
          'echo "== acpi =="; ls -A /proc/acpi | wc -l',
          'echo "== ipfwd =="; (echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1; echo "rc=$?"',
          'echo "== irq =="; ls /proc/irq > /dev/null && echo readable',
          'echo "== mi =="; cat /proc/self/mountinfo',
        ].join('; ')];
    });
    const s = sections(r.out);
    expect(s.keys).toBe('0');
    expect(s.timer).toBe('0');
    expect(s.fw).toBe('0');
    expect(s.fwtouch).toBe("touch: /sys/firmware/x: Read-only file system");
    expect(s.acpi).toBe('0');
    expect(s.ipfwd).toBe("sh: can't create /proc/sys/net/ipv4/ip_forward: Read-only file system\nrc=1");
    expect(s.irq).toBe('readable');
    const mounts = parseMountinfo(s.mi);
    for (const p of ['/proc/keys', '/proc/timer_list']) {
      const m = mountAt(mounts, p);
      // /dev/null of the container's /dev bound over the file.
      expect(m?.root, p).toBe('/null');
    }
    for (const p of ['/sys/firmware', '/proc/acpi']) {
      const m = mountAt(mounts, p);
      expect([m?.fsType, m?.options[0]], p).toEqual(['tmpfs', 'ro']);
    }
    for (const p of ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys']) {
      const m = mountAt(mounts, p);
      expect([m?.fsType, m?.root, m?.options[0]], p).toEqual(['proc', p.slice('/proc'.length), 'ro']);
    }
    // Paths missing on this kernel (/proc/kcore, /proc/sysrq-trigger, ...) are skipped, not errors.
    expect(mountAt(mounts, '/proc/kcore')).toBeUndefined();
    expect(mountAt(mounts, '/proc/sysrq-trigger')).toBeUndefined();
  });

  it('config without maskedPaths/readonlyPaths (fields absent): runc\'s default lists are applied', async () => {
    const s = sections(
      await h.output((spec) => {
        delete spec.linux.maskedPaths;
        delete spec.linux.readonlyPaths;
        withNetAdmin(spec);
        spec.process.args = [
          'sh',
          '-c',
          'echo "== timer =="; cat /proc/timer_list | wc -c; echo "== fw =="; ls -A /sys/firmware | wc -l; echo "== ipfwd =="; (echo 1 > /proc/sys/net/ipv4/ip_forward) 2>&1; echo "== mi =="; cat /proc/self/mountinfo',
        ];
      }),
    );
    expect(s.timer).toBe('0');
    expect(s.fw).toBe('0');
    expect(s.ipfwd).toBe("sh: can't create /proc/sys/net/ipv4/ip_forward: Read-only file system");
    const mounts = parseMountinfo(s.mi);
    // The same mounts as the explicit runc lists give (paths missing on this kernel are skipped).
    const restricted = mounts.filter((m) => /^\/(proc|sys)\/./.test(m.mountPoint) && !m.mountPoint.startsWith('/sys/fs/cgroup')).map((m) => m.mountPoint);
    expect(restricted.sort()).toEqual(['/proc/acpi', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/keys', '/proc/sys', '/proc/timer_list', '/sys/firmware']);
  });

  it('explicit empty lists: nothing is masked or made read-only', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.linux.maskedPaths = [];
        spec.linux.readonlyPaths = [];
        withNetAdmin(spec);
        spec.process.args = [
          'sh',
          '-c',
          'echo "== timer =="; head -c 100 /proc/timer_list | wc -c; echo "== fw =="; grep -c " /sys/firmware " /proc/self/mountinfo || true; echo "== ipfwd =="; echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward; echo "== procmounts =="; grep -c " /proc/" /proc/self/mountinfo || true',
        ];
      }),
    );
    expect(s.timer).toBe('100');
    expect(s.fw).toBe('0');
    // Writable: and harmless, the container has its own network namespace.
    expect(s.ipfwd).toBe('1');
    expect(s.procmounts).toBe('0');
  });

  it('a missing masked or readonly path is skipped; an extra masked file reads empty', async () => {
    const s = sections(
      await h.output((spec) => {
        spec.linux.maskedPaths = ['/proc/does-not-exist', '/proc/interrupts'];
        spec.linux.readonlyPaths = ['/proc/also-missing'];
        spec.process.args = ['sh', '-c', 'echo "== irq =="; cat /proc/interrupts | wc -c'];
      }),
    );
    expect(s.irq).toBe('0');
  });
});
