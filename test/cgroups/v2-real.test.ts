/**
 * The v2 manager for real on this host's cgroup2 hierarchy (/sys/fs/cgroup/unified, which holds only
 * hugetlb): a child cgroup with hugetlb limits, cgroup.freeze with a process joined, cgroup.kill, destroy;
 * and the eBPF device filter, which works on any cgroup2 directory whatever its controllers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { detectLayout } from '../../kernel/cgroups/layout.js';
import { createCgroupManager } from '../../kernel/cgroups/manager.js';
import { queryDevicePrograms } from '../../kernel/cgroups/v2/bpf.js';
import type { DeviceRule } from '../../config/model.js';
import { V2Manager } from '../../kernel/cgroups/v2/manager.js';
import { hostHugePageSizes } from '../fixtures/host-features.js';
import { killQuietly, removeLeftovers, startWaiting, uniqueName, type Waiting } from './host-helpers.js';

const UNIFIED = '/sys/fs/cgroup/unified';
/** Whether this host has 1GB huge pages (2MB ones it has). */
const HAS_1GB = hostHugePageSizes().includes('1GB');
let managers: V2Manager[] = [];
let procs: Waiting[] = [];

function manager(): V2Manager {
  const m = new V2Manager({ dir: path.join(UNIFIED, uniqueName('cordon-v2')), mountPoint: UNIFIED, hugePageSizes: hostHugePageSizes() });
  managers.push(m);
  return m;
}

const dirOf = (m: V2Manager) => m.paths.unified;
const read = (m: V2Manager, f: string) => fs.readFileSync(path.join(dirOf(m), f), 'utf8');

afterEach(async () => {
  for (const w of procs) killQuietly(w);
  await Promise.all(procs.map((w) => w.exited));
  procs = [];
  for (const m of managers) {
    try {
      await m.destroy();
    } catch {
      removeLeftovers([dirOf(m)]);
    }
  }
  managers = [];
});

describe('cgroup v2 on /sys/fs/cgroup/unified', () => {
  it(`creates a child with hugetlb enabled and limits read back exactly${HAS_1GB ? '' : ' (no 1GB pages on this host: that limit is refused, naming the file)'}`, () => {
    const m = manager();
    m.create();
    expect(fs.statSync(dirOf(m)).isDirectory()).toBe(true);
    expect(m.created).toEqual([dirOf(m)]);
    expect(fs.readFileSync(path.join(UNIFIED, 'cgroup.subtree_control'), 'utf8').split(/\s+/)).toContain('hugetlb');
    expect(read(m, 'cgroup.controllers').trim()).toBe('hugetlb');
    const gb = { pageSize: '1GB', limit: 2147483648n };
    if (HAS_1GB) {
      m.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 6291456n }, gb] });
      expect(read(m, 'hugetlb.2MB.max')).toBe('6291456\n');
      expect(read(m, 'hugetlb.1GB.max')).toBe('2147483648\n');
      expect(m.stats().hugetlb).toEqual({ '2MB': { usage: 0n, maxUsage: 0n, failcnt: 0n }, '1GB': { usage: 0n, maxUsage: 0n, failcnt: 0n } });
    } else {
      // The 2MB limit is written before the 1GB one fails.
      expect(() => m.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 6291456n }, gb] })).toThrow(
        `hugepageLimits[1] (1GB): open ${dirOf(m)}/hugetlb.1GB.max: no such file or directory`,
      );
      expect(read(m, 'hugetlb.2MB.max')).toBe('6291456\n');
      expect(fs.existsSync(path.join(dirOf(m), 'hugetlb.1GB.max'))).toBe(false);
      expect(m.stats().hugetlb).toEqual({ '2MB': { usage: 0n, maxUsage: 0n, failcnt: 0n } });
    }
    expect(() => m.apply({ pids: { limit: 5n } })).toThrow(`pids.limit: not supported: the pids controller is not available in ${dirOf(m)} (cgroup.controllers: hugetlb)`);
  });

  it('freezes a joined process until cgroup.events says frozen, thaws, kills through cgroup.kill, destroys', async () => {
    const m = manager();
    m.create();
    const w = startWaiting(['sh', '-c', 'read x; echo started; exec sleep 30']);
    procs.push(w);
    m.join(w.pid);
    w.go();
    await vi.waitFor(() => expect(w.out()).toBe('started\n'), { timeout: 5000 });
    expect(m.pids()).toEqual([w.pid]);
    expect(fs.readFileSync(`/proc/${w.pid}/cgroup`, 'utf8')).toContain(`0::/${path.basename(dirOf(m))}\n`);
    await m.freeze();
    expect(read(m, 'cgroup.freeze')).toBe('1\n');
    expect(read(m, 'cgroup.events')).toBe('populated 1\nfrozen 1\n');
    expect(m.isFrozen()).toBe(true);
    await m.thaw();
    expect(read(m, 'cgroup.events')).toBe('populated 1\nfrozen 0\n');
    expect(m.isFrozen()).toBe(false);
    m.signalAll(9);
    expect((await w.exited).signal).toBe('SIGKILL');
    await m.destroy();
    expect(fs.existsSync(dirOf(m))).toBe(false);
  });

  it('fires fs.watch on cgroupfs event files (what the v2 OOM watch relies on)', async () => {
    const m = manager();
    m.create();
    const seen: string[] = [];
    const watcher = fs.watch(path.join(dirOf(m), 'cgroup.events'), () => seen.push(read(m, 'cgroup.events')));
    try {
      const w = startWaiting(['sleep', '30']);
      procs.push(w);
      m.join(w.pid);
      await vi.waitFor(() => expect(seen).toContain('populated 1\nfrozen 0\n'), { timeout: 2000 });
      w.child.kill('SIGKILL');
      await vi.waitFor(() => expect(seen).toContain('populated 0\nfrozen 0\n'), { timeout: 2000 });
    } finally {
      watcher.close();
    }
  });
});

describe('eBPF device filter (cgroup v2 device controller)', () => {
  const script = [
    'read x',
    '(echo hi > /dev/null) 2>&- && echo null-w:ok || echo null-w:denied',
    '(cat /dev/null) 2>&- && echo null-r:ok || echo null-r:denied',
    '(head -c 4 /dev/zero > /dev/zero) 2>&- && echo zero-rw:ok || echo zero-rw:denied',
    'x=$(head -c 1 /dev/full 2>&-) && echo full-r:ok || echo full-r:denied',
  ].join('\n');

  async function runIn(m: V2Manager): Promise<string[]> {
    const w = startWaiting(['sh', '-c', script]);
    procs.push(w);
    m.join(w.pid);
    w.go();
    const end = await w.exited;
    expect(end.code).toBe(0);
    return w.out().trim().split('\n');
  }

  it('denies what the rules do not allow, and a new apply replaces the program', async () => {
    const m = manager();
    m.create();
    const rules: DeviceRule[] = [
      { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'r' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rw' },
    ];
    m.apply({ devices: rules });
    const fd = fs.openSync(dirOf(m), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      expect(queryDevicePrograms(fd).length).toBe(1);
      expect(await runIn(m)).toEqual(['null-w:denied', 'null-r:ok', 'zero-rw:ok', 'full-r:denied']);
      m.apply({ devices: [{ allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'w' }] });
      expect(queryDevicePrograms(fd).length).toBe(1);
      expect(await runIn(m)).toEqual(['null-w:ok', 'null-r:ok', 'zero-rw:denied', 'full-r:ok']);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('routes devices to the v2 hierarchy when there is no v1 devices controller', async () => {
    const layout = detectLayout({
      mountinfo: `41 31 0:38 / ${UNIFIED} rw,relatime - cgroup2 cgroup2 rw\n`,
      cgroupFile: '0::/\n',
    });
    expect(layout.mode).toBe('v2');
    const id = uniqueName('cordon-v2dev');
    const cm = createCgroupManager({ id, layout, hugePageSizes: [] });
    expect(cm.paths).toEqual({ unified: path.join(UNIFIED, id) });
    try {
      cm.create();
      cm.apply({ devices: [{ allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' }] });
      const w = startWaiting(['sh', '-c', 'read x; (cat /dev/null) 2>&- && echo ok || echo denied']);
      procs.push(w);
      cm.join(w.pid);
      w.go();
      await w.exited;
      expect(w.out()).toBe('denied\n');
    } finally {
      await cm.destroy().catch(() => removeLeftovers([path.join(UNIFIED, id)]));
    }
  });
});
