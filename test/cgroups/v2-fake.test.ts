/**
 * The cgroup v2 manager against a fake cgroupfs tree of plain files in a temp dir: the exact contents
 * written for every resource (runc's v1→v2 translation numbers), the order of writes, stats parsing,
 * freeze waiting on cgroup.events, OOM watching on memory.events, and errors naming resource and file.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { detectLayout } from '../../kernel/cgroups/layout.js';
import { createCgroupManager, openCgroupManager } from '../../kernel/cgroups/manager.js';
import { type CgroupManager } from '../../kernel/cgroups/types.js';
import { CgroupError } from '../../config/cgroup-error.js';
import type { CgroupResources } from '../../config/model.js';
import { sharesToWeight } from '../../kernel/cgroups/v2/cpu.js';
import { blkioWeightToIoWeight } from '../../kernel/cgroups/v2/io.js';
import { swapToV2 } from '../../kernel/cgroups/v2/memory.js';
import { V2Manager } from '../../kernel/cgroups/v2/manager.js';

const CONTROLLERS = 'cpuset cpu io memory hugetlb pids rdma misc';
const LEAF_FILES: Record<string, string> = {
  'cgroup.controllers': 'cpuset cpu io memory hugetlb pids\n',
  'cgroup.subtree_control': '',
  'cgroup.procs': '',
  'cgroup.freeze': '0\n',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.kill': '',
  'cpu.weight': '100\n',
  'cpu.max': 'max 100000\n',
  'cpu.max.burst': '0\n',
  'cpu.idle': '0\n',
  'cpu.stat': 'usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 10\nnr_throttled 2\nthrottled_usec 50\n',
  'cpuset.cpus': '',
  'cpuset.mems': '',
  'memory.max': '1000000\n',
  'memory.low': '0\n',
  'memory.high': 'max\n',
  'memory.current': '1000\n',
  'memory.peak': '2000\n',
  'memory.swap.max': '5000\n',
  'memory.swap.current': '100\n',
  'memory.stat': 'anon 100\nfile 200\nkernel 30\nshmem 4\n',
  'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
  'pids.max': 'max\n',
  'pids.current': '3\n',
  'io.weight': 'default 100\n',
  'io.max': '',
  'io.stat': '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=6 rios=7 wios=8 dbytes=0 dios=0\n',
  'hugetlb.2MB.max': 'max\n',
  'hugetlb.2MB.current': '2097152\n',
  'hugetlb.2MB.events': 'max 3\n',
  'hugetlb.1GB.max': 'max\n',
};

let tmp: string;
let root: string;
let leaf: string;
let m: CgroupManager;
const children: number[] = [];

const read = (f: string) => fs.readFileSync(path.join(leaf, f), 'utf8');
const write = (f: string, v: string) => fs.writeFileSync(path.join(leaf, f), v);

function makeTree(): void {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-cg2-fake-'));
  root = path.join(tmp, 'sys/fs/cgroup');
  fs.mkdirSync(path.join(root, 'a', 'c1'), { recursive: true });
  for (const d of [root, path.join(root, 'a')]) {
    fs.writeFileSync(path.join(d, 'cgroup.controllers'), `${CONTROLLERS}\n`);
    fs.writeFileSync(path.join(d, 'cgroup.subtree_control'), '');
  }
  leaf = path.join(root, 'a', 'c1');
  for (const [f, v] of Object.entries(LEAF_FILES)) fs.writeFileSync(path.join(leaf, f), v);
}

/** Every write(2) the manager makes, as [file name relative to the tree, data]. */
function recordWrites(): Array<[string, string]> {
  const fdPath = new Map<number, string>();
  const out: Array<[string, string]> = [];
  const open = fs.openSync;
  const wr = fs.writeSync;
  vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (open as (...a: unknown[]) => number)(p, ...rest);
    fdPath.set(fd, path.relative(root, String(p)));
    return fd;
  }) as typeof fs.openSync);
  vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, data: unknown, ...rest: unknown[]) => {
    if (typeof data === 'string' && fdPath.has(fd)) out.push([fdPath.get(fd) as string, data]);
    return (wr as (...a: unknown[]) => number)(fd, data, ...rest);
  }) as typeof fs.writeSync);
  return out;
}

beforeEach(() => {
  makeTree();
  const layout = detectLayout({
    mountinfo: '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n',
    cgroupFile: '0::/a\n',
    root: tmp,
  });
  m = createCgroupManager({ id: 'ignored', cgroupsPath: 'c1', layout, hugePageSizes: ['2MB', '1GB'] });
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('translations (runc 1.1 numbers)', () => {
  it('converts cpu shares to cpu.weight', () => {
    expect(sharesToWeight(1024n)).toBe(39n);
    expect(sharesToWeight(2n)).toBe(1n);
    expect(sharesToWeight(262144n)).toBe(10000n);
    expect(sharesToWeight(512n)).toBe(20n);
    expect(sharesToWeight(0n)).toBe(0n);
  });

  it('converts blkio weight to io.weight', () => {
    expect(blkioWeightToIoWeight(500)).toBe(4950);
    expect(blkioWeightToIoWeight(10)).toBe(1);
    expect(blkioWeightToIoWeight(1000)).toBe(10000);
    expect(blkioWeightToIoWeight(100)).toBe(910);
  });

  it('converts memory+swap to swap alone', () => {
    expect(swapToV2(128n << 20n, 64n << 20n)).toBe(64n << 20n);
    expect(swapToV2(0n, -1n)).toBe(-1n);
    expect(swapToV2(-1n, 64n)).toBe(-1n);
    expect(swapToV2(0n, 64n)).toBe(0n);
    expect(() => swapToV2(100n, 0n)).toThrow('unable to set swap limit without memory limit');
    expect(() => swapToV2(10n, 64n)).toThrow('memory+swap limit should be >= memory limit');
  });
});

describe('create', () => {
  it('resolves the relative path under the own cgroup and enables the root controllers in every ancestor', () => {
    expect(m.paths).toEqual({ unified: leaf });
    m.create();
    const all = '+cpuset +cpu +io +memory +hugetlb +pids +rdma +misc';
    expect(fs.readFileSync(path.join(root, 'cgroup.subtree_control'), 'utf8')).toBe(all);
    expect(fs.readFileSync(path.join(root, 'a', 'cgroup.subtree_control'), 'utf8')).toBe(all);
    expect(read('cgroup.subtree_control')).toBe('');
    expect(m.created).toEqual([]);
  });

  it('creates missing directories and records them', () => {
    const layout = detectLayout({ mountinfo: '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', cgroupFile: '0::/\n', root: tmp });
    const n = createCgroupManager({ id: 'x', cgroupsPath: '/new/deep', layout, hugePageSizes: [] });
    n.create();
    expect(fs.statSync(path.join(root, 'new', 'deep')).isDirectory()).toBe(true);
    expect(n.created).toEqual([path.join(root, 'new'), path.join(root, 'new', 'deep')]);
  });
});

describe('apply', () => {
  it('writes every resource with runc translations, in runc order', () => {
    const writes = recordWrites();
    m.apply({
      pids: { limit: 42n },
      memory: { limit: 64n << 20n, swap: 128n << 20n, reservation: 32n << 20n, kernel: 1n << 20n, swappiness: 10n, disableOOMKiller: true },
      blockIO: {
        weight: 500,
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576n }],
        throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2097152n }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100n }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 50n }],
      },
      cpu: { shares: 1024n, quota: 50000n, period: 100000n, burst: 1000n, idle: 1n, cpus: '0-1', mems: '0' },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304n }],
      unified: { 'memory.high': '50000000' },
    });
    const leafWrites = writes.map(([f, v]) => [path.relative('a/c1', f), v]);
    expect(leafWrites).toEqual([
      ['pids.max', '42'],
      ['memory.swap.max', '67108864'],
      ['memory.max', '67108864'],
      ['memory.low', '33554432'],
      ['io.weight', '4950'],
      ['io.max', '8:0 rbps=1048576 wbps=2097152 riops=100 wiops=50'],
      ['cpu.idle', '1'],
      ['cpu.weight', '39'],
      ['cpu.max.burst', '1000'],
      ['cpu.max', '50000 100000'],
      ['cpuset.cpus', '0-1'],
      ['cpuset.mems', '0'],
      ['hugetlb.2MB.max', '4194304'],
      ['memory.high', '50000000'],
    ]);
    expect(read('cpu.weight')).toBe('39');
    expect(read('io.max')).toBe('8:0 rbps=1048576 wbps=2097152 riops=100 wiops=50');
    expect(read('memory.high')).toBe('50000000');
  });

  it('writes one io.max line per device', () => {
    const writes = recordWrites();
    m.apply({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 10n }, { major: 8, minor: 16, rate: 20n }], throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 30n }] } });
    expect(writes.filter(([f]) => f.endsWith('io.max')).map(([, v]) => v)).toEqual(['8:0 rbps=10', '8:16 rbps=20 wiops=30']);
  });

  it('uses io.bfq.weight with the blkio weight as given when BFQ is there', () => {
    write('io.bfq.weight', 'default 100\n');
    m.apply({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } });
    // The device line is written last (each write replaces the fake file).
    expect(read('io.bfq.weight')).toBe('8:0 300');
    expect(read('io.weight')).toBe('default 100\n');
  });

  it('applies the special values -1, 0 and "max" as runc', () => {
    m.apply({ pids: { limit: -1n }, memory: { limit: -1n }, cpu: { quota: -1n, period: 250000n } });
    expect(read('pids.max')).toBe('max');
    expect(read('memory.max')).toBe('max');
    expect(read('memory.swap.max')).toBe('max');
    expect(read('cpu.max')).toBe('max 250000');
    m.apply({ pids: { limit: 0n }, memory: { limit: 100n << 20n, swap: 100n << 20n }, cpu: { quota: 20000n } });
    expect(read('pids.max')).toBe('max');
    expect(read('memory.swap.max')).toBe('0');
    expect(read('memory.max')).toBe('104857600');
    expect(read('cpu.max')).toBe('20000');
  });

  it('ignores a missing memory.swap.max for "max" but not for a real limit', () => {
    fs.unlinkSync(path.join(leaf, 'memory.swap.max'));
    m.apply({ memory: { limit: -1n } });
    expect(read('memory.max')).toBe('max');
    expect(() => m.apply({ memory: { limit: 10n << 20n, swap: 20n << 20n } })).toThrow(/memory\.swap: open .*memory\.swap\.max: no such file or directory/);
  });

  it('rejects a limit below usage when checkBeforeUpdate is set', () => {
    write('memory.current', '100000000\n');
    expect(() => m.apply({ memory: { limit: 64n << 20n, checkBeforeUpdate: true } })).toThrow('memory.limit: rejecting memory limit 67108864 below usage 100000000');
    expect(read('memory.max')).toBe('1000000\n');
    m.apply({ memory: { limit: 64n << 20n } });
    expect(read('memory.max')).toBe('67108864');
  });

  it('writes rdma.max when the controller is there and names cgroup.controllers when it is not', () => {
    let err: unknown;
    try {
      m.apply({ rdma: { mlx5_0: { hcaHandles: 2, hcaObjects: 2000 } } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CgroupError);
    expect((err as CgroupError).message).toBe(`rdma: not supported: the rdma controller is not available in ${leaf} (cgroup.controllers: cpuset cpu io memory hugetlb pids)`);
    expect((err as CgroupError).file).toBe(path.join(leaf, 'cgroup.controllers'));
    write('cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma\n');
    write('rdma.max', '');
    m.apply({ rdma: { mlx5_0: { hcaHandles: 2, hcaObjects: 2000 } } });
    expect(read('rdma.max')).toBe('mlx5_0 hca_handle=2 hca_object=2000');
  });

  it('names the resource and the file when a file is missing', () => {
    fs.unlinkSync(path.join(leaf, 'memory.low'));
    let err: unknown;
    try {
      m.apply({ memory: { reservation: 1n << 20n } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CgroupError);
    const ce = err as CgroupError;
    expect(ce.resource).toBe('memory.reservation');
    expect(ce.file).toBe(path.join(leaf, 'memory.low'));
    expect(ce.code).toBe('ENOENT');
    expect(ce.message).toBe(`memory.reservation: open ${path.join(leaf, 'memory.low')}: no such file or directory`);
  });

  it('checks unified keys', () => {
    expect(() => m.apply({ unified: { '../cgroup.procs': '1' } })).toThrow('unified resource "../cgroup.procs" must be a file name (no slashes)');
    expect(() => m.apply({ unified: { 'foo.bar': '1' } })).toThrow('unified resource "foo.bar" can\'t be set: controller "foo" not available');
    expect(() => m.apply({ unified: { 'memory.nothere': '1' } })).toThrow(`open ${path.join(leaf, 'memory.nothere')}: no such file or directory`);
  });

  it('refuses real-time scheduling knobs (cgroup v2 has none)', () => {
    expect(() => m.apply({ cpu: { realtimeRuntime: 1000n } })).toThrow('cpu.realtimeRuntime: not supported');
  });

  it('refuses cgroup v1-only controllers', () => {
    expect(() => m.apply({ network: { classID: 0x100001 } })).toThrow('network.classID: not supported: the net_cls controller is not mounted');
  });
});

describe('stats', () => {
  it('parses cpu.stat, memory.*, pids, io.stat and hugetlb', () => {
    const s = m.stats();
    expect(s.cpu).toEqual({
      usage: { total: 1_000_000n, percpu: [], user: 600_000n, kernel: 400_000n },
      throttling: { periods: 10n, throttledPeriods: 2n, throttledTime: 50_000n },
    });
    expect(s.memory.usage).toEqual({ usage: 1000n, maxUsage: 2000n, failcnt: 0n, limit: 1000000n });
    expect(s.memory.swap).toEqual({ usage: 1100n, maxUsage: 0n, failcnt: 0n, limit: 1005000n });
    expect(s.memory.cache).toBe(200n);
    expect(s.memory.rss).toBe(100n);
    expect(s.memory.stats).toEqual({ anon: 100n, file: 200n, kernel: 30n, shmem: 4n });
    expect(s.pids).toEqual({ current: 3n, limit: 0n });
    expect(s.blkio.ioServiceBytesRecursive).toEqual([
      { major: 8, minor: 0, op: 'Read', value: 100n },
      { major: 8, minor: 0, op: 'Write', value: 200n },
      { major: 8, minor: 16, op: 'Read', value: 5n },
      { major: 8, minor: 16, op: 'Write', value: 6n },
    ]);
    expect(s.blkio.ioServicedRecursive).toEqual([
      { major: 8, minor: 0, op: 'Read', value: 1n },
      { major: 8, minor: 0, op: 'Write', value: 2n },
      { major: 8, minor: 16, op: 'Read', value: 7n },
      { major: 8, minor: 16, op: 'Write', value: 8n },
    ]);
    expect(s.hugetlb).toEqual({ '2MB': { usage: 2097152n, maxUsage: 0n, failcnt: 3n } });
    write('pids.max', '42\n');
    write('memory.max', 'max\n');
    write('memory.swap.max', 'max\n');
    const t = m.stats();
    expect(t.pids.limit).toBe(42n);
    expect(t.memory.usage.limit).toBe(0xffff_ffff_ffff_ffffn);
    expect(t.memory.swap.limit).toBe(0xffff_ffff_ffff_ffffn);
  });

  it('lists pids recursively', () => {
    write('cgroup.procs', '12\n34\n');
    fs.mkdirSync(path.join(leaf, 'sub'));
    fs.writeFileSync(path.join(leaf, 'sub', 'cgroup.procs'), '56\n');
    expect(m.pids().sort((a, b) => a - b)).toEqual([12, 34, 56]);
  });

  it('counts OOM kills from memory.events', () => {
    expect(m.oomKillCount()).toBe(0);
    write('memory.events', 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n');
    expect(m.oomKillCount()).toBe(2);
  });
});

describe('freezer', () => {
  it('writes cgroup.freeze and resolves only once cgroup.events says frozen 1', async () => {
    let done = false;
    const p = m.freeze().then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 60));
    expect(read('cgroup.freeze')).toBe('1');
    expect(done).toBe(false);
    expect(m.isFrozen()).toBe(true);
    write('cgroup.events', 'populated 1\nfrozen 1\n');
    await p;
    expect(done).toBe(true);
    const t = m.thaw();
    await new Promise((r) => setTimeout(r, 30));
    expect(read('cgroup.freeze')).toBe('0');
    write('cgroup.events', 'populated 1\nfrozen 0\n');
    await t;
    expect(m.isFrozen()).toBe(false);
  });

  it('gives up after the timeout and thaws back', async () => {
    const v2 = new V2Manager({ dir: leaf, freezeTimeoutMs: 100, hugePageSizes: [] });
    await expect(v2.freeze()).rejects.toThrow('freezer: timeout of 100 ms reached waiting for the cgroup to freeze');
    expect(read('cgroup.freeze')).toBe('0');
  });
});

describe('OOM watching and signals', () => {
  it('calls onOom once per new oom_kill (fs.watch on memory.events)', async () => {
    const seen: number[] = [];
    const stop = m.watchOom(() => seen.push(Date.now()));
    await new Promise((r) => setTimeout(r, 20));
    write('memory.events', 'low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n');
    await vi.waitFor(() => expect(seen.length).toBe(1), { timeout: 2000 });
    write('memory.events', 'low 0\nhigh 0\nmax 3\noom 3\noom_kill 3\n');
    await vi.waitFor(() => expect(seen.length).toBe(3), { timeout: 2000 });
    stop();
    write('memory.events', 'low 0\nhigh 0\nmax 9\noom 9\noom_kill 9\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.length).toBe(3);
  });

  it('kills through cgroup.kill and signals other signals pid by pid', async () => {
    m.signalAll(9);
    expect(read('cgroup.kill')).toBe('1');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(child.pid as number);
    write('cgroup.procs', `${child.pid}\n`);
    const exit = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    m.signalAll(15);
    expect(await exit).toBe('SIGTERM');
  });

  it('re-opens from recorded paths with the controllers of the directory', () => {
    write('cgroup.controllers', 'hugetlb pids\n');
    const o = openCgroupManager({ unified: leaf }, { hugePageSizes: ['2MB'] });
    o.apply({ pids: { limit: 7n } });
    expect(read('pids.max')).toBe('7');
    expect(o.stats().pids).toEqual({ current: 3n, limit: 7n });
    expect(() => o.apply({ memory: { limit: 1n << 20n } })).toThrow('memory: not supported: the memory controller is not mounted');
  });
});

describe('apply on an empty request', () => {
  it('writes nothing', () => {
    const writes = recordWrites();
    const r: CgroupResources = { memory: {}, cpu: {}, blockIO: {} };
    m.apply(r);
    expect(writes).toEqual([]);
  });
});
