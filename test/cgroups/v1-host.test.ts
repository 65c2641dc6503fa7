/**
 * The manager on this host's real hybrid layout (v1 controllers, hugetlb on cgroup2): paths as runc puts
 * them, every supported resource read back from /sys/fs/cgroup/<controller>/..., clear errors for what the
 * host lacks, join/pids/freeze/stats/signal/destroy with real processes, and an OOM kill seen through the
 * eventfd registration.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { detectLayout, parseProcCgroup } from '../../kernel/cgroups/layout.js';
import { createCgroupManager, openCgroupManager } from '../../kernel/cgroups/manager.js';
import { type CgroupManager } from '../../kernel/cgroups/types.js';
import { CgroupError } from '../../config/cgroup-error.js';
import type { DeviceRule } from '../../config/model.js';
import { blkioWeightFile, hostHugePageSizes } from '../fixtures/host-features.js';
import { BUSYBOX, killQuietly, procState, removeLeftovers, rootDisk, startWaiting, uniqueName, type Waiting } from './host-helpers.js';

const CG = '/sys/fs/cgroup';
const MiB = 1n << 20n;
/** Where this host puts a blkio weight (undefined: its kernel has no CFQ or BFQ, so no weights at all). */
const WEIGHT_FILE = blkioWeightFile();
/** Whether this host has 1GB huge pages (the 2MB ones every x86_64 host here has). */
const HAS_1GB = hostHugePageSizes().includes('1GB');
/** What this host lacks of the full resource set, for the test names. */
const LACKING = [WEIGHT_FILE ? undefined : 'blockIO.weight (no BFQ)', HAS_1GB ? undefined : '1GB huge pages'].filter((x) => x !== undefined);
let managers: CgroupManager[] = [];
let procs: Waiting[] = [];

function manager(cgroupsPath?: string): { m: CgroupManager; id: string } {
  const id = uniqueName('cordon-v1');
  const m = createCgroupManager({ id, cgroupsPath });
  managers.push(m);
  return { m, id };
}

const read = (dir: string, f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
const trimmed = (dir: string, f: string) => read(dir, f).trim();

afterEach(async () => {
  for (const w of procs) killQuietly(w);
  await Promise.all(procs.map((w) => w.exited));
  procs = [];
  for (const m of managers) {
    try {
      await m.destroy();
    } catch {
      removeLeftovers([...Object.values(m.paths), ...(m.created ?? [])]);
    }
  }
  managers = [];
});

/** runc 1.1.5's device rules for the default spec: deny all, then its AllowedDevices. */
const RUNC_DEVICE_RULES: DeviceRule[] = [
  { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' },
  { allow: true, type: 'c', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'b', major: -1, minor: -1, access: 'm' },
  ...[
    [1, 3],
    [1, 8],
    [1, 7],
    [5, 0],
    [1, 5],
    [1, 9],
    [136, -1],
    [5, 2],
    [10, 200],
  ].map(([major, minor]): DeviceRule => ({ allow: true, type: 'c', major, minor, access: 'rwm' })),
];
/** devices.list of `runc run` with the default spec, measured on this host. */
const RUNC_DEVICES_LIST = 'b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 136:* rwm\n';

describe('layout and paths on this host', () => {
  it('detects the hybrid layout', () => {
    const l = detectLayout();
    expect(l.mode).toBe('hybrid');
    for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'name=systemd']) {
      expect(l.v1ByController[c]?.mountPoint).toBe(`${CG}/${c === 'name=systemd' ? 'systemd' : c}`);
    }
    expect(l.v1ByController.net_cls).toBeUndefined();
    expect(l.v2?.mountPoint).toBe(`${CG}/unified`);
    expect(l.v2?.controllers).toContain('hugetlb');
  });

  it('puts an empty cgroupsPath under the own cgroup of each controller, as runc 1.1.5 does', () => {
    const { m, id } = manager();
    const own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    expect(m.paths.memory).toBe(path.join(CG, 'memory', own.memory, id));
    expect(m.paths.cpu).toBe(path.join(CG, 'cpu', own.cpu, id));
    expect(m.paths['name=systemd']).toBe(path.join(CG, 'systemd', own['name=systemd'], id));
    expect(m.paths.unified).toBe(path.join(CG, 'unified', own.unified, id));
    expect(Object.keys(m.paths).sort()).toEqual(['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'name=systemd', 'pids', 'unified']);
  });

  it('puts an absolute cgroupsPath under each mount point and refuses the systemd form', () => {
    const id = uniqueName('x');
    const m = createCgroupManager({ id, cgroupsPath: `/cordon-abs/${id}` });
    expect(m.paths.memory).toBe(`${CG}/memory/cordon-abs/${id}`);
    expect(m.paths.unified).toBe(`${CG}/unified/cordon-abs/${id}`);
    expect(() => createCgroupManager({ id, cgroupsPath: 'system.slice:cordon:abc' })).toThrow('the systemd cgroup driver is not supported');
    expect(() => createCgroupManager({ id, cgroupsPath: '../../escape' })).toThrow('climbs out of');
  });
});

describe('resources on v1 (and hugetlb on the v2 side)', () => {
  it(`applies every supported resource and reads back the exact values${LACKING.length > 0 ? ` (this host lacks ${LACKING.join(', ')}: left out)` : ''}`, () => {
    const { m } = manager();
    m.create();
    for (const d of Object.values(m.paths)) expect(fs.statSync(d).isDirectory()).toBe(true);
    const [major, minor] = rootDisk();
    const dev = { major, minor };
    m.apply({
      memory: { limit: 64n * MiB, reservation: 32n * MiB, swap: 128n * MiB, kernel: 64n * MiB, kernelTCP: 16n * MiB, swappiness: 10n, disableOOMKiller: true, useHierarchy: true },
      cpu: { shares: 512n, period: 100000n, quota: 50000n, burst: 10000n, idle: 0n, realtimePeriod: 1000000n, realtimeRuntime: 10000n, cpus: '0', mems: '0' },
      pids: { limit: 42n },
      blockIO: {
        ...(WEIGHT_FILE ? { weight: 500 } : {}),
        throttleReadBpsDevice: [{ ...dev, rate: 1048576n }],
        throttleWriteBpsDevice: [{ ...dev, rate: 2097152n }],
        throttleReadIOPSDevice: [{ ...dev, rate: 100n }],
        throttleWriteIOPSDevice: [{ ...dev, rate: 50n }],
      },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304n }, ...(HAS_1GB ? [{ pageSize: '1GB', limit: 1073741824n }] : [])],
      devices: RUNC_DEVICE_RULES,
    });
    const p = m.paths;
    expect(trimmed(p.memory, 'memory.limit_in_bytes')).toBe('67108864');
    expect(trimmed(p.memory, 'memory.soft_limit_in_bytes')).toBe('33554432');
    expect(trimmed(p.memory, 'memory.memsw.limit_in_bytes')).toBe('134217728');
    expect(trimmed(p.memory, 'memory.swappiness')).toBe('10');
    expect(read(p.memory, 'memory.oom_control')).toMatch(/^oom_kill_disable 1\n/);
    // Kernel memory is ignored (as runc 1.1): the kmem limits stay unlimited.
    expect(trimmed(p.memory, 'memory.kmem.limit_in_bytes')).toBe('9223372036854771712');
    expect(trimmed(p.memory, 'memory.kmem.tcp.limit_in_bytes')).toBe('9223372036854771712');
    expect(trimmed(p.cpu, 'cpu.shares')).toBe('512');
    expect(trimmed(p.cpu, 'cpu.cfs_period_us')).toBe('100000');
    expect(trimmed(p.cpu, 'cpu.cfs_quota_us')).toBe('50000');
    expect(trimmed(p.cpu, 'cpu.cfs_burst_us')).toBe('10000');
    expect(trimmed(p.cpu, 'cpu.idle')).toBe('0');
    expect(trimmed(p.cpu, 'cpu.rt_period_us')).toBe('1000000');
    expect(trimmed(p.cpu, 'cpu.rt_runtime_us')).toBe('10000');
    expect(trimmed(p.cpuset, 'cpuset.cpus')).toBe('0');
    expect(trimmed(p.cpuset, 'cpuset.mems')).toBe('0');
    expect(trimmed(p.pids, 'pids.max')).toBe('42');
    // The weight goes to CFQ's file, else BFQ's, as runc picks it (a host with neither: the next test's refusal).
    if (WEIGHT_FILE === 'blkio.bfq.weight') expect(fs.existsSync(path.join(p.blkio, 'blkio.weight'))).toBe(false);
    if (WEIGHT_FILE) expect(trimmed(p.blkio, WEIGHT_FILE)).toBe('500');
    expect(read(p.blkio, 'blkio.throttle.read_bps_device')).toBe(`${major}:${minor} 1048576\n`);
    expect(read(p.blkio, 'blkio.throttle.write_bps_device')).toBe(`${major}:${minor} 2097152\n`);
    expect(read(p.blkio, 'blkio.throttle.read_iops_device')).toBe(`${major}:${minor} 100\n`);
    expect(read(p.blkio, 'blkio.throttle.write_iops_device')).toBe(`${major}:${minor} 50\n`);
    expect(trimmed(p.unified, 'hugetlb.2MB.max')).toBe('4194304');
    if (HAS_1GB) expect(trimmed(p.unified, 'hugetlb.1GB.max')).toBe('1073741824');
    expect(read(p.devices, 'devices.list')).toBe(RUNC_DEVICES_LIST);
    // hugetlb was enabled for the children of the cgroup2 root.
    expect(read(`${CG}/unified`, 'cgroup.subtree_control')).toContain('hugetlb');
  });

  it('orders memory and memsw writes so raising and lowering both work', () => {
    const { m } = manager();
    m.create();
    const mem = m.paths.memory;
    m.apply({ memory: { limit: 64n * MiB, swap: 96n * MiB } });
    m.apply({ memory: { limit: 256n * MiB, swap: 512n * MiB } });
    expect([trimmed(mem, 'memory.limit_in_bytes'), trimmed(mem, 'memory.memsw.limit_in_bytes')]).toEqual(['268435456', '536870912']);
    m.apply({ memory: { limit: 32n * MiB, swap: 48n * MiB } });
    expect([trimmed(mem, 'memory.limit_in_bytes'), trimmed(mem, 'memory.memsw.limit_in_bytes')]).toEqual(['33554432', '50331648']);
    m.apply({ memory: { limit: -1n } });
    expect([trimmed(mem, 'memory.limit_in_bytes'), trimmed(mem, 'memory.memsw.limit_in_bytes')]).toEqual(['9223372036854771712', '9223372036854771712']);
    m.apply({ pids: { limit: -1n } });
    expect(trimmed(m.paths.pids, 'pids.max')).toBe('max');
  });

  it('updates device rules with the minimal transition', () => {
    const { m } = manager();
    m.create();
    m.apply({ devices: RUNC_DEVICE_RULES });
    const next = RUNC_DEVICE_RULES.filter((r) => !(r.major === 10 && r.minor === 200)).map((r) => (r.major === 1 && r.minor === 3 ? { ...r, access: 'r' } : r));
    m.apply({ devices: next });
    expect(read(m.paths.devices, 'devices.list')).toBe('b *:* m\nc *:* m\nc 1:3 r\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 136:* rwm\n');
    m.apply({ devices: [{ allow: true, type: 'a', major: -1, minor: -1, access: 'rwm' }] });
    expect(read(m.paths.devices, 'devices.list')).toBe('a *:* rwm\n');
  });

  it('gives clear errors for what this host does not have', () => {
    const { m } = manager();
    m.create();
    const err = (f: () => void): CgroupError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(CgroupError);
        return e as CgroupError;
      }
      throw new Error('expected a CgroupError');
    };
    const net = err(() => m.apply({ network: { classID: 0x100001 } }));
    expect(net.message).toBe('network.classID: not supported: the net_cls controller is not mounted (and the cgroup v2 hierarchy does not offer net_cls)');
    expect(net.resource).toBe('network.classID');
    expect(err(() => m.apply({ network: { priorities: [{ name: 'eth0', priority: 5 }] } })).message).toMatch(/^network\.priorities: not supported: the net_prio controller is not mounted/);
    expect(err(() => m.apply({ rdma: { mlx5_0: { hcaHandles: 1 } } })).message).toMatch(/^rdma: not supported: the rdma controller is not mounted/);
    const leaf = err(() => m.apply({ blockIO: { leafWeight: 300 } }));
    expect(leaf.message).toBe(`blockIO.leafWeight: open ${m.paths.blkio}/blkio.leaf_weight: no such file or directory (this host's kernel has no blkio.leaf_weight: leaf weights were CFQ's, removed in Linux 5.0)`);
    expect(leaf.file).toBe(`${m.paths.blkio}/blkio.leaf_weight`);
    // Per-device BFQ weights need BFQ active on the disk; runc fails the same way ("operation not supported").
    // Without BFQ (or CFQ) in the kernel there is no weight file at all: runc fails to open it, cordon too.
    const [maj, min] = rootDisk();
    const bfqActive = fs.readFileSync(`/sys/dev/block/${maj}:${min}/queue/scheduler`, 'utf8').includes('[bfq]');
    const weightDevice = () => m.apply({ blockIO: { weightDevice: [{ major: maj, minor: min, weight: 300 }] } });
    const noWeights = 'no CFQ or BFQ I/O scheduler is available';
    if (WEIGHT_FILE === undefined) {
      const w = err(() => m.apply({ blockIO: { weight: 500 } }));
      expect(w.message).toBe(`blockIO.weight: open ${m.paths.blkio}/blkio.bfq.weight: no such file or directory (this host's kernel has neither blkio.weight nor blkio.bfq.weight: ${noWeights})`);
      expect([w.resource, w.file]).toEqual(['blockIO.weight', `${m.paths.blkio}/blkio.bfq.weight`]);
      expect(err(weightDevice).message).toBe(
        `blockIO.weightDevice[0].weight: open ${m.paths.blkio}/blkio.bfq.weight_device: no such file or directory (this host's kernel has neither blkio.weight_device nor blkio.bfq.weight_device: ${noWeights})`,
      );
    } else if (bfqActive) {
      weightDevice();
      expect(read(m.paths.blkio, 'blkio.bfq.weight_device')).toContain(`${maj}:${min} 300`);
    } else {
      expect(err(weightDevice).message).toBe(`blockIO.weightDevice[0].weight: failed to write "${maj}:${min} 300": write ${m.paths.blkio}/blkio.bfq.weight_device: operation not supported`);
    }
    const sw = err(() => m.apply({ memory: { swappiness: 200n } }));
    expect(sw.message).toBe('memory.swappiness: invalid memory swappiness value: 200 (valid range is 0-100)');
    const uni = err(() => m.apply({ unified: { 'memory.max': '1' } }));
    expect(uni.message).toBe('unified["memory.max"]: cannot set "memory.max": the memory controller is not on the cgroup v2 hierarchy (it is mounted as a cgroup v1 controller)');
    const hier = err(() => m.apply({ memory: { limit: 64n * MiB, swap: 32n * MiB } }));
    expect(hier.message).toBe(`memory.swap: failed to write "33554432": write ${m.paths.memory}/memory.memsw.limit_in_bytes: invalid argument`);
    const bad = err(() => m.apply({ hugepageLimits: [{ pageSize: '3MB', limit: 1n }] }));
    expect(bad.message).toBe(`hugepageLimits[0] (3MB): open ${m.paths.unified}/hugetlb.3MB.max: no such file or directory`);
    if (!HAS_1GB) {
      const gb = err(() => m.apply({ hugepageLimits: [{ pageSize: '1GB', limit: 1073741824n }] }));
      expect(gb.message).toBe(`hugepageLimits[0] (1GB): open ${m.paths.unified}/hugetlb.1GB.max: no such file or directory`);
    }
  });
});

describe('processes', () => {
  it('joins, lists, freezes, thaws, reports stats, signals and destroys', async () => {
    const { m } = manager();
    m.create();
    m.apply({ memory: { limit: 64n * MiB }, pids: { limit: 42n } });
    // A new cpuset cgroup starts empty; the parent's cpus and mems were copied in (else the join fails).
    expect(trimmed(m.paths.cpuset, 'cpuset.cpus')).toBe(trimmed(path.dirname(m.paths.cpuset), 'cpuset.cpus'));
    expect(trimmed(m.paths.cpuset, 'cpuset.mems')).toBe(trimmed(path.dirname(m.paths.cpuset), 'cpuset.mems'));
    const w = startWaiting(['sh', '-c', 'read x; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo busy-done; exec sleep 30']);
    procs.push(w);
    m.join(w.pid);
    w.go();
    expect(m.pids()).toEqual([w.pid]);
    const own = parseProcCgroup(fs.readFileSync(`/proc/${w.pid}/cgroup`, 'utf8'));
    for (const [k, dir] of Object.entries(m.paths)) {
      const mount = k === 'unified' ? `${CG}/unified` : k === 'name=systemd' ? `${CG}/systemd` : `${CG}/${k}`;
      expect(path.join(mount, own[k])).toBe(dir);
    }
    await vi.waitFor(() => expect(w.out()).toBe('busy-done\n'), { timeout: 10_000 });

    await m.freeze();
    expect(trimmed(m.paths.freezer, 'freezer.state')).toBe('FROZEN');
    expect(m.isFrozen()).toBe(true);
    expect(procState(w.pid)).toBe('D');
    await m.thaw();
    expect(trimmed(m.paths.freezer, 'freezer.state')).toBe('THAWED');
    expect(m.isFrozen()).toBe(false);
    expect(procState(w.pid)).toBe('S');

    const s = m.stats();
    expect(s.cpu.usage.total).toBe(BigInt(trimmed(m.paths.cpuacct, 'cpuacct.usage')));
    expect(s.cpu.usage.total > 0n).toBe(true);
    expect(s.cpu.usage.percpu.length).toBe(trimmed(m.paths.cpuacct, 'cpuacct.usage_percpu').split(/\s+/).length);
    const [, user, , system] = trimmed(m.paths.cpuacct, 'cpuacct.stat').split(/\s+/);
    expect(s.cpu.usage.user).toBe(BigInt(user) * 10_000_000n);
    expect(s.cpu.usage.kernel).toBe(BigInt(system) * 10_000_000n);
    expect(s.memory.usage.limit).toBe(64n * MiB);
    expect(s.memory.usage.usage > 0n).toBe(true);
    expect(s.memory.stats.rss).toBe(s.memory.rss);
    expect(Object.keys(s.memory.stats)).toContain('total_rss');
    expect(s.pids).toEqual({ current: 1n, limit: 42n });
    expect(s.hugetlb['2MB']).toEqual({ usage: 0n, maxUsage: 0n, failcnt: 0n });

    // A later process re-opens the cgroups from the recorded paths.
    const again = openCgroupManager(m.paths, { created: m.created });
    expect(again.pids()).toEqual([w.pid]);
    again.signalAll(9);
    expect((await w.exited).signal).toBe('SIGKILL');
    await again.destroy();
    for (const d of Object.values(m.paths)) expect(fs.existsSync(d)).toBe(false);
  });

  it('destroy waits for exiting processes and leaves a pre-existing parent alone', async () => {
    const parent = uniqueName('cordon-parent');
    const own = parseProcCgroup(fs.readFileSync('/proc/self/cgroup', 'utf8'));
    const pre = path.join(CG, 'pids', own.pids, parent);
    fs.mkdirSync(pre);
    try {
      const m = createCgroupManager({ id: 'unused', cgroupsPath: `${parent}/made/leaf` });
      managers.push(m);
      m.create();
      expect(m.created).toContain(path.join(pre, 'made'));
      expect(m.created).not.toContain(pre);
      const w = startWaiting(['sleep', '30']);
      procs.push(w);
      m.join(w.pid);
      w.child.kill('SIGKILL');
      await m.destroy();
      expect(fs.existsSync(path.join(pre, 'made'))).toBe(false);
      expect(fs.existsSync(pre)).toBe(true);
      for (const d of Object.values(m.paths)) expect(fs.existsSync(d)).toBe(false);
    } finally {
      for (const c of ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified']) {
        const key = c === 'systemd' ? 'name=systemd' : c;
        removeLeftovers([path.join(CG, c, own[key] ?? '/', parent)]);
      }
    }
  });

  it('sees an OOM kill through the eventfd and counts it', async () => {
    const { m } = manager();
    m.create();
    m.apply({ memory: { limit: 32n * MiB } });
    expect(m.oomKillCount()).toBe(0);
    const events: number[] = [];
    const stop = m.watchOom(() => events.push(Date.now()));
    try {
      const w = startWaiting([BUSYBOX, 'sh', '-c', 'read x; a=x; while :; do a=$a$a; done']);
      procs.push(w);
      m.join(w.pid);
      w.go();
      const end = await w.exited;
      expect(end.signal).toBe('SIGKILL');
      await vi.waitFor(() => expect(events.length).toBeGreaterThanOrEqual(1), { timeout: 5000 });
      expect(m.oomKillCount()).toBe(1);
      expect(m.stats().memory.usage.failcnt > 0n).toBe(true);
    } finally {
      stop();
    }
  });
});
