/**
 * Layout detection from mountinfo text (hybrid as on this host, combined v1 mounts, v2 only, a container's
 * view with non-root mount roots) and cgroupsPath resolution (absolute, relative, empty, systemd form, "..").
 */
import { describe, expect, it } from 'vitest';
import { cgroupDir, resolveCgroupPaths } from '../../kernel/cgroups/cgroups-path.js';
import { parseCgroupsPath } from '../../config/cgroups-path.js';
import { detectLayout, hugePageName, ownCgroupDir, parseProcCgroup } from '../../kernel/cgroups/layout.js';
import { CgroupError } from '../../config/cgroup-error.js';

/** This host's cgroup mounts (measured). */
const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

/** A classic systemd v1 host: combined cpu,cpuacct and net_cls,net_prio mounts, no cgroup2. */
const COMBINED = `25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
`;

describe('detectLayout', () => {
  it('reads this host: hybrid, every v1 controller on its own mount, hugetlb on cgroup2', () => {
    const l = detectLayout({ mountinfo: HYBRID, cgroupFile: HYBRID_CGROUP, root: '/nonexistent-root' });
    expect(l.mode).toBe('hybrid');
    expect(Object.keys(l.v1ByController).sort()).toEqual(['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'name=systemd', 'pids']);
    expect(l.v1ByController.cpu.mountPoint).toBe('/nonexistent-root/sys/fs/cgroup/cpu');
    expect(l.v2).toEqual({ mountPoint: '/nonexistent-root/sys/fs/cgroup/unified', mountRoot: '/', controllers: [] });
    expect(l.own.memory).toBe('/process_api/abc');
    expect(ownCgroupDir(l, 'memory')).toBe('/nonexistent-root/sys/fs/cgroup/memory/process_api/abc');
    expect(ownCgroupDir(l, 'unified')).toBe('/nonexistent-root/sys/fs/cgroup/unified');
  });

  it('handles combined and named v1 mounts (v1 only)', () => {
    const l = detectLayout({ mountinfo: COMBINED, cgroupFile: '4:memory:/user.slice\n3:net_cls,net_prio:/\n2:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n' });
    expect(l.mode).toBe('v1');
    expect(l.v1ByController.cpu).toBe(l.v1ByController.cpuacct);
    expect(l.v1ByController.cpu.mountPoint).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(l.v1ByController.net_prio.controllers).toEqual(['net_cls', 'net_prio']);
    expect(l.v1ByController['name=systemd'].mountPoint).toBe('/sys/fs/cgroup/systemd');
    expect(l.v2).toBeUndefined();
    const paths = resolveCgroupPaths(l, 'c1');
    expect(paths).toEqual({
      memory: '/sys/fs/cgroup/memory/user.slice/c1',
      cpu: '/sys/fs/cgroup/cpu,cpuacct/user.slice/c1',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct/user.slice/c1',
      net_cls: '/sys/fs/cgroup/net_cls,net_prio/c1',
      net_prio: '/sys/fs/cgroup/net_cls,net_prio/c1',
      'name=systemd': '/sys/fs/cgroup/systemd/user.slice/session-1.scope/c1',
    });
  });

  it('detects a v2-only host and takes the own cgroup relative to the mount root (container view)', () => {
    const l = detectLayout({
      mountinfo: '30 23 0:26 /kubepods/pod1 /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n',
      cgroupFile: '0::/kubepods/pod1/ctr\n',
      root: '/nonexistent-root',
    });
    expect(l.mode).toBe('v2');
    expect(ownCgroupDir(l, 'unified')).toBe('/nonexistent-root/sys/fs/cgroup/ctr');
    expect(resolveCgroupPaths(l, 'id1', '/abs/x')).toEqual({ unified: '/nonexistent-root/sys/fs/cgroup/abs/x' });
    expect(resolveCgroupPaths(l, 'id1')).toEqual({ unified: '/nonexistent-root/sys/fs/cgroup/ctr/id1' });
  });

  it('refuses a host without any cgroup mount', () => {
    expect(() => detectLayout({ mountinfo: '22 1 0:21 / /proc rw - proc proc rw\n', cgroupFile: '' })).toThrow(CgroupError);
  });

  it('parses /proc/PID/cgroup', () => {
    expect(parseProcCgroup('2:cpu,cpuacct:/a\n0::/b\n1:name=systemd:/c\n')).toEqual({ cpu: '/a', cpuacct: '/a', unified: '/b', 'name=systemd': '/c' });
  });

  it('names huge page sizes as hugetlb files do', () => {
    expect(hugePageName(2097152)).toBe('2MB');
    expect(hugePageName(1073741824)).toBe('1GB');
    expect(hugePageName(65536)).toBe('64KB');
  });
});

describe('cgroupsPath', () => {
  const l = detectLayout({ mountinfo: HYBRID, cgroupFile: HYBRID_CGROUP });

  it('cleans paths and tells absolute from relative', () => {
    expect(parseCgroupsPath('/a//b/./c/', 'id')).toEqual({ inner: 'a/b/c', absolute: true });
    expect(parseCgroupsPath('a/../b', 'id')).toEqual({ inner: 'b', absolute: false });
    expect(parseCgroupsPath('', 'mycontainer')).toEqual({ inner: 'mycontainer', absolute: false });
    expect(parseCgroupsPath(undefined, 'mycontainer')).toEqual({ inner: 'mycontainer', absolute: false });
  });

  it('resolves absolute under the mount point and relative under the own cgroup', () => {
    expect(cgroupDir(l, 'memory', parseCgroupsPath('/x/y', 'id'))).toBe('/sys/fs/cgroup/memory/x/y');
    expect(cgroupDir(l, 'memory', parseCgroupsPath('x/y', 'id'))).toBe('/sys/fs/cgroup/memory/process_api/abc/x/y');
    expect(cgroupDir(l, 'cpu', parseCgroupsPath('x/y', 'id'))).toBe('/sys/fs/cgroup/cpu/x/y');
    expect(cgroupDir(l, 'unified', parseCgroupsPath('', 'id'))).toBe('/sys/fs/cgroup/unified/id');
  });

  it('refuses the systemd form, escapes with "..", the base itself and bad ids', () => {
    expect(() => parseCgroupsPath('system.slice:docker:abc', 'id')).toThrow(
      'linux.cgroupsPath: "system.slice:docker:abc" is in the systemd driver\'s "slice:prefix:name" form; the systemd cgroup driver is not supported',
    );
    expect(() => parseCgroupsPath('/../etc', 'id')).toThrow('linux.cgroupsPath: "/../etc" climbs out of the cgroup hierarchy root with ".."');
    expect(() => parseCgroupsPath('a/../../b', 'id')).toThrow('climbs out of the runtime\'s own cgroup');
    expect(() => parseCgroupsPath('/', 'id')).toThrow('names the cgroup hierarchy root itself');
    expect(() => parseCgroupsPath('a/..', 'id')).toThrow("names the runtime's own cgroup itself");
    expect(() => parseCgroupsPath('', 'a/b')).toThrow('cannot name a cgroup');
    // A colon alone is a plain name, as runc's cgroupfs driver takes it.
    expect(parseCgroupsPath('a:b', 'id')).toEqual({ inner: 'a:b', absolute: false });
  });
});
