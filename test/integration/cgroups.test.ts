/**
 * Cgroups of real containers, run through the CLI (every verb a separate `node bin/cordon.js` process; build
 * dist/ first) and checked from the HOST: every resource this hybrid host supports lands as the exact value in
 * /sys/fs/cgroup/<controller>/<container's cgroup> (the same values runc writes for the same bundle); what the
 * host lacks fails with an error naming the resource and leaves nothing behind; cgroupsPath forms; an OOM kill
 * (exit 137, `oom` + `exit{oomKilled}` in the journal, an `oom` line from `cordon events`); a pids limit
 * against a fork bomb; pause/resume as the freezer and /proc see it; update; ps; events --stats;
 * kill --all; and no cgroup directory of a container left in any hierarchy after delete, delete --force
 * (running or paused) or a failed create.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, type OciSpecLike, makeBundle } from '../fixtures/bundle.js';
import { procState, removeLeftovers, rootDisk } from '../cgroups/host-helpers.js';
import { blkioWeightFile, hostHugePageSizes } from '../fixtures/host-features.js';
import {
  CLI,
  alive,
  cleanupCordonRoot,
  cleanupRuncRoot,
  cliEnv,
  cordon,
  freshRoot,
  leftovers,
  removeIoDir,
  runc,
  startCordon,
  stateEntries,
  stateOf,
  theError,
  waitFor,
} from '../cli/helpers.js';

const CG = '/sys/fs/cgroup';
const MiB = 1024 * 1024;
/** Every hierarchy mounted on this host (v1 controllers, name=systemd as "systemd", cgroup2 as "unified"). */
const HIERARCHIES = ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids', 'systemd', 'unified'];
/** Where this host puts a blkio weight (undefined: its kernel has no CFQ or BFQ, so no weights; a weight is refused). */
const WEIGHT_FILE = blkioWeightFile();
/** Whether this host has 1GB huge pages (2MB ones it has). */
const HAS_1GB = hostHugePageSizes().includes('1GB');
/** Ids of this file's containers all start with this (the final sweep looks for it). */
const PREFIX = `cgit-${process.pid}`;

let root: string;
let runcRoot: string;
const bundles: Bundle[] = [];
/** Absolute cgroupsPath parents this file uses, with whether they existed before (only ours get removed). */
const parents: Record<string, boolean> = {};
let seq = 0;

/** This test process's own cgroup per hierarchy (the CLI it spawns is in the same ones). */
const own: Record<string, string> = {};
for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
  const [, ctrls, p] = line.split(':');
  if (ctrls === '') own.unified = p;
  else for (const c of ctrls.split(',')) own[c === 'name=systemd' ? 'systemd' : c] = p;
}

const nextId = (tag: string) => `${PREFIX}-${++seq}-${tag}`;

/** Where a container's cgroup is in one hierarchy for a relative cgroupsPath (or the id): under our own cgroup. */
const cgDir = (h: string, rel: string) => join(CG, h, own[h] ?? '/', rel);
const readCg = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');
const cgValue = (dir: string, file: string) => readCg(dir, file).trim();

/** Every directory in every hierarchy (walked recursively) whose name contains `needle`. */
function cgroupDirsNamed(needle: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed meanwhile
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (e.name.includes(needle)) found.push(p);
      if (depth < 8) walk(p, depth + 1);
    }
  };
  for (const h of readdirSync(CG)) walk(join(CG, h), 0);
  return found;
}

/** A bundle (busybox rootfs copy) with the spec edited; removed in afterAll. */
function bundle(edit: (s: OciSpecLike) => void): Bundle {
  const b = makeBundle({ spec: (s) => void edit(s) });
  bundles.push(b);
  return b;
}

function withResources(resources: Record<string, unknown>, args: string[], more?: (s: OciSpecLike) => void): Bundle {
  return bundle((s) => {
    s.process.args = args;
    s.linux.resources = { devices: [{ allow: false, access: 'rwm' }], ...resources };
    more?.(s);
  });
}

/** `cordon run -d`; returns the init's host pid. */
async function runDetached(b: Bundle, id: string): Promise<number> {
  const r = await cordon(root, ['run', '-d', '-b', b.dir, id]);
  expect(r.code, r.stderr).toBe(0);
  return Number((await stateOf(root, id)).pid);
}

/** The journal's events of one container (lines "<8 hex CRC> <json>"). */
function journal(id: string): Array<{ action: string; attributes: Record<string, unknown>; from?: string; to?: string }> {
  const text = readFileSync(join(root, 'events.journal'), 'utf8');
  const out = [];
  for (const line of text.split('\n').filter(Boolean)) {
    expect(line).toMatch(/^[0-9a-f]{8} \{/);
    const e = JSON.parse(line.slice(9)) as { containerId: string; action: string; attributes: Record<string, unknown> };
    if (e.containerId === id) out.push(e);
  }
  return out;
}

/** Nothing of container `id` anywhere: no cgroup directory in any hierarchy, no state dir, no process of the bundle. */
function expectGone(id: string, b: Bundle): void {
  expect(cgroupDirsNamed(id)).toEqual([]);
  expect(existsSync(join(root, id))).toBe(false);
  // leftovers() lists every state root entry; another test's container is not this one's business.
  expect(leftovers(b.dir, root).filter((l) => !l.startsWith('state root entry: ') || l.endsWith(` ${id}`))).toEqual([]);
}

/** Host pids in a cgroup.procs file, sorted. */
const procsOf = (dir: string) => readCg(dir, 'cgroup.procs').split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);

/** `cordon ps --format json ID`. */
async function psJson(id: string): Promise<number[]> {
  const r = await cordon(root, ['ps', '--format', 'json', id]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as number[];
}

beforeAll(() => {
  root = freshRoot('cordon-it-cgroups');
  runcRoot = freshRoot('runc-it-cgroups');
  for (const p of ['cordon-test', `cordon-rt-${process.pid}`]) parents[p] = HIERARCHIES.some((h) => existsSync(join(CG, h, p)));
});

// A failed test's container goes right away (force), so the next test starts clean.
afterEach(async () => {
  for (const id of stateEntries(root)) await cordon(root, ['delete', '--force', id]);
});

afterAll(async () => {
  try {
    await cleanupCordonRoot(root);
    await cleanupRuncRoot(runcRoot);
  } finally {
    for (const b of bundles) b.cleanup();
    removeIoDir();
    // Last resort after a failed test: this file's cgroups (thawed, their processes killed), then the
    // absolute-path parents it created.
    for (let i = 0; i < 20 && cgroupDirsNamed(PREFIX).length > 0; i++) {
      const dirs = cgroupDirsNamed(PREFIX);
      for (const d of dirs) {
        try {
          if (existsSync(join(d, 'freezer.state'))) writeFileSync(join(d, 'freezer.state'), 'THAWED');
          for (const p of procsOf(d)) process.kill(p, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await new Promise((r) => setTimeout(r, 100));
      removeLeftovers(dirs);
    }
    for (const [p, existed] of Object.entries(parents)) {
      if (existed) continue;
      for (const h of HIERARCHIES) {
        try {
          rmdirSync(join(CG, h, p));
        } catch {
          // absent (the normal case) or in use by someone else
        }
      }
    }
  }
});

describe('linux.resources: exact values in the host cgroup files', () => {
  it(`every resource this host supports, as runc writes it for the same bundle${WEIGHT_FILE ? '' : ' (no blockIO.weight: this kernel has no BFQ)'}`, async () => {
    const [major, minor] = rootDisk();
    const dev = { major, minor };
    const resources = {
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 5, access: 'r' }, // runc's defaults (appended after) widen it to rwm
        { allow: true, type: 'b', major: 7, minor: 0, access: 'rw' },
        { allow: true, type: 'c', major: 4, access: 'w' },
      ],
      memory: { limit: 64 * MiB, reservation: 32 * MiB, swap: 128 * MiB, swappiness: 10, disableOOMKiller: true },
      cpu: { shares: 512, quota: 50000, period: 100000, burst: 10000, realtimeRuntime: 10000, realtimePeriod: 1000000, cpus: '1', mems: '0' },
      pids: { limit: 42 },
      blockIO: {
        ...(WEIGHT_FILE ? { weight: 500 } : {}),
        throttleReadBpsDevice: [{ ...dev, rate: 1048576 }],
        throttleWriteBpsDevice: [{ ...dev, rate: 2097152 }],
        throttleReadIOPSDevice: [{ ...dev, rate: 100 }],
        throttleWriteIOPSDevice: [{ ...dev, rate: 50 }],
      },
    };
    // hugetlb lives on cgroup2 here: cordon writes it there; runc 1.1.5 refuses both on this hybrid host. The
    // `unified` key sets 1GB pages where the host has them, else the 2MB reservation limit.
    const [unifiedKey, unifiedValue] = HAS_1GB ? ['hugetlb.1GB.max', String(1024 * MiB)] : ['hugetlb.2MB.rsvd.max', String(16 * MiB)];
    const b = withResources({ ...resources, hugepageLimits: [{ pageSize: '2MB', limit: 4 * 2 * MiB }], unified: { [unifiedKey]: unifiedValue } }, ['sleep', '1000']);
    const rb = withResources(resources, ['sleep', '1000']);
    const id = nextId('all');
    const rid = nextId('all-runc');
    const pid = await runDetached(b, id);
    const rr = await runc(runcRoot, ['run', '-d', '-b', rb.dir, rid]);
    expect(rr.code, rr.stderr).toBe(0);

    // The init joined its cgroup in every hierarchy (as the host sees /proc/PID/cgroup).
    const procCgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    for (const h of HIERARCHIES) {
      const key = h === 'unified' ? '' : h === 'systemd' ? 'name=systemd' : h;
      expect(procCgroup).toContain(`:${key}:${join(own[h] ?? '/', id)}\n`);
      expect(procsOf(cgDir(h, id))).toEqual([pid]);
    }
    const mem = cgDir('memory', id);
    expect(mem).toBe(join(CG, 'memory', own.memory, id)); // nested under our own memory cgroup, as runc does
    const expected: Array<[string, string, string]> = [
      ['memory', 'memory.limit_in_bytes', String(64 * MiB)],
      ['memory', 'memory.soft_limit_in_bytes', String(32 * MiB)],
      ['memory', 'memory.memsw.limit_in_bytes', String(128 * MiB)],
      ['memory', 'memory.swappiness', '10'],
      ['cpu', 'cpu.shares', '512'],
      ['cpu', 'cpu.cfs_quota_us', '50000'],
      ['cpu', 'cpu.cfs_period_us', '100000'],
      ['cpu', 'cpu.rt_runtime_us', '10000'],
      ['cpu', 'cpu.rt_period_us', '1000000'],
      ['cpuset', 'cpuset.cpus', '1'],
      ['cpuset', 'cpuset.mems', '0'],
      ['pids', 'pids.max', '42'],
      ...(WEIGHT_FILE ? [['blkio', WEIGHT_FILE, '500'] as [string, string, string]] : []),
      ['blkio', 'blkio.throttle.read_bps_device', `${major}:${minor} 1048576`],
      ['blkio', 'blkio.throttle.write_bps_device', `${major}:${minor} 2097152`],
      ['blkio', 'blkio.throttle.read_iops_device', `${major}:${minor} 100`],
      ['blkio', 'blkio.throttle.write_iops_device', `${major}:${minor} 50`],
      [
        'devices',
        'devices.list',
        'b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 4:* w\nc 5:0 rwm\nc 5:2 rwm\nb 7:0 rw\nc 10:200 rwm\nc 136:* rwm',
      ],
    ];
    const runcPaths = (JSON.parse(readFileSync(join(runcRoot, rid, 'state.json'), 'utf8')) as { cgroup_paths: Record<string, string> }).cgroup_paths;
    for (const [h, file, want] of expected) {
      expect(cgValue(cgDir(h, id), file), `${h}/${file}`).toBe(want);
      expect(cgValue(runcPaths[h], file), `runc ${h}/${file}`).toBe(want);
    }
    expect(readCg(mem, 'memory.oom_control')).toMatch(/^oom_kill_disable 1\n/);
    expect(readCg(runcPaths.memory, 'memory.oom_control')).toMatch(/^oom_kill_disable 1\n/);
    // The CFS burst (spec 1.1 cpu.burst; runc 1.1.5 predates it and leaves 0).
    expect(cgValue(cgDir('cpu', id), 'cpu.cfs_burst_us')).toBe('10000');
    // hugetlb: on cgroup2 (hugepageLimits and the `unified` key), nothing else there.
    const uni = cgDir('unified', id);
    expect(cgValue(uni, 'hugetlb.2MB.max')).toBe(String(8 * MiB));
    expect(cgValue(uni, unifiedKey)).toBe(unifiedValue);

    // delete (after a kill: a stopped container) leaves no directory anywhere; runc's delete neither.
    expect((await cordon(root, ['kill', id, 'KILL'])).code).toBe(0);
    await waitFor('the container to stop', async () => (await stateOf(root, id)).status === 'stopped');
    const d = await cordon(root, ['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expectGone(id, b);
    expect((await runc(runcRoot, ['delete', '--force', rid])).code).toBe(0);
    expect(cgroupDirsNamed(rid)).toEqual([]);
  });

  it('cpu.realtimeRuntime under a parent without RT budget fails as in runc, and cordon leaves nothing', async () => {
    const parent = `cordon-rt-${process.pid}`;
    const id = nextId('rt');
    const b = withResources({ cpu: { realtimeRuntime: 10000, realtimePeriod: 1000000 } }, ['sleep', '1000'], (s) => {
      s.linux.cgroupsPath = `/${parent}/${id}`;
    });
    const r = await cordon(root, ['create', '-b', b.dir, id]);
    expect(r.code).toBe(1);
    const file = join(CG, 'cpu', parent, id, 'cpu.rt_runtime_us');
    expect(theError(r)).toBe(`cordon: cpu.realtimeRuntime: failed to write "10000": write ${file}: invalid argument`);
    expectGone(id, b);
    // The parent cordon created for the absolute path went away with the failed create.
    for (const h of HIERARCHIES) expect(existsSync(join(CG, h, parent)), h).toBe(parents[parent]);
    // runc 1.1.5 sets no budget on the parent either and fails on the same write.
    const rr = await runc(runcRoot, ['run', '-d', '-b', b.dir, id]);
    expect(rr.code).toBe(1);
    expect(rr.stderr).toContain(`failed to write \\"10000\\": write ${file}: invalid argument`);
    // Unlike cordon, runc leaves the parent directories it made behind: remove them.
    if (!parents[parent]) removeLeftovers(HIERARCHIES.map((h) => join(CG, h, parent)));
    for (const h of HIERARCHIES) expect(existsSync(join(CG, h, parent)), h).toBe(parents[parent]);
  });

  const [maj, min] = rootDisk();
  const bfq = readFileSync(`/sys/dev/block/${maj}:${min}/queue/scheduler`, 'utf8').includes('[bfq]');
  const unsupported: Array<[string, Record<string, unknown>, (id: string) => string]> = [
    ['network.classID', { network: { classID: 0x100001 } }, () => 'network.classID: not supported: the net_cls controller is not mounted (and the cgroup v2 hierarchy does not offer net_cls)'],
    ['network.priorities', { network: { priorities: [{ name: 'eth0', priority: 5 }] } }, () => 'network.priorities: not supported: the net_prio controller is not mounted (and the cgroup v2 hierarchy does not offer net_prio)'],
    ['rdma', { rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 100 } } }, () => 'rdma: not supported: the rdma controller is not mounted (and the cgroup v2 hierarchy does not offer rdma)'],
    ['blockIO.leafWeight', { blockIO: { leafWeight: 300 } }, (id) => `blockIO.leafWeight: open ${cgDir('blkio', id)}/blkio.leaf_weight: no such file or directory (this host's kernel has no blkio.leaf_weight: leaf weights were CFQ's, removed in Linux 5.0)`],
    [
      'unified memory key',
      { unified: { 'memory.high': '1000000' } },
      () => 'unified["memory.high"]: cannot set "memory.high": the memory controller is not on the cgroup v2 hierarchy (it is mounted as a cgroup v1 controller)',
    ],
  ];
  // Per-device BFQ weights need BFQ active on the disk (runc fails the same way without it).
  if (WEIGHT_FILE && !bfq) {
    unsupported.push([
      'blockIO.weightDevice',
      { blockIO: { weightDevice: [{ major: maj, minor: min, weight: 300 }] } },
      (id) => `blockIO.weightDevice[0].weight: failed to write "${maj}:${min} 300": write ${cgDir('blkio', id)}/blkio.bfq.weight_device: operation not supported`,
    ]);
  }
  // A kernel without CFQ or BFQ has no weight files at all: runc 1.1.5 fails to open them ("openat2 PATH: no
  // such file or directory"), cordon refuses the same, saying the host's kernel has none.
  if (!WEIGHT_FILE) {
    const none = 'no CFQ or BFQ I/O scheduler is available';
    unsupported.push(
      [
        'blockIO.weight (this kernel has no BFQ)',
        { blockIO: { weight: 500 } },
        (id) => `blockIO.weight: open ${cgDir('blkio', id)}/blkio.bfq.weight: no such file or directory (this host's kernel has neither blkio.weight nor blkio.bfq.weight: ${none})`,
      ],
      [
        'blockIO.weightDevice (this kernel has no BFQ)',
        { blockIO: { weightDevice: [{ major: maj, minor: min, weight: 300 }] } },
        (id) => `blockIO.weightDevice[0].weight: open ${cgDir('blkio', id)}/blkio.bfq.weight_device: no such file or directory (this host's kernel has neither blkio.weight_device nor blkio.bfq.weight_device: ${none})`,
      ],
    );
  }
  if (!HAS_1GB) {
    unsupported.push([
      'hugepageLimits 1GB (this host has no 1GB pages)',
      { hugepageLimits: [{ pageSize: '1GB', limit: 1024 * MiB }] },
      (id) => `hugepageLimits[0] (1GB): open ${cgDir('unified', id)}/hugetlb.1GB.max: no such file or directory`,
    ]);
  }
  it.each(unsupported)('%s: a clear error naming it, exit 1, nothing left behind', async (_name, resources, message) => {
    const id = nextId('unsup');
    // A memory limit first, so cgroups exist and were written to before the refusal.
    const b = withResources({ memory: { limit: 64 * MiB }, pids: { limit: 10 }, ...resources }, ['sleep', '1000']);
    const r = await cordon(root, ['create', '-b', b.dir, id]);
    expect(r.code).toBe(1);
    expect(theError(r)).toBe(`cordon: ${message(id)}`);
    expectGone(id, b);
    expect(stateEntries(root)).toEqual([]);
    // The journal says why.
    expect(journal(id).map((e) => [e.action, e.attributes.message])).toEqual([['error', message(id)]]);
  });
});

describe('a create that fails after the init joined its cgroups', () => {
  it('a bad mount inside the container: exit 1, the error, and no cgroup directory left in any hierarchy', async () => {
    const id = nextId('late');
    const b = withResources({ memory: { limit: 64 * MiB }, pids: { limit: 10 }, cpu: { shares: 256 } }, ['sleep', '1000'], (s) => {
      s.mounts.push({ destination: '/mnt', type: 'tmpfs', source: 'tmpfs', options: ['size=bogus'] });
    });
    const r = await cordon(root, ['create', '-b', b.dir, id]);
    expect(r.code).toBe(1);
    expect(theError(r)).toBe('cordon: mounts[7]: mount("tmpfs", "/mnt", "tmpfs", 0, "size=bogus") failed: EINVAL (Invalid argument)');
    expectGone(id, b);
    expect(journal(id).map((e) => e.action)).toEqual(['error']);

    // The id is free again (as in runc): fixed, the same id creates, gets its cgroups, and deletes cleanly.
    const spec = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')) as OciSpecLike;
    spec.mounts = spec.mounts.filter((m) => m.destination !== '/mnt');
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(spec));
    const again = await cordon(root, ['create', '-b', b.dir, id]);
    expect(again.code, again.stderr).toBe(0);
    expect(cgValue(cgDir('memory', id), 'memory.limit_in_bytes')).toBe(String(64 * MiB));
    expect(cgValue(cgDir('cpu', id), 'cpu.shares')).toBe('256');
    expect((await stateOf(root, id)).status).toBe('created');
    const d = await cordon(root, ['delete', id]); // a created container is killed by delete, as runc does
    expect(d.code, d.stderr).toBe(0);
    expectGone(id, b);
    // delete of a created container records the SIGKILL it sends, then the exit it causes (as runc, it kills first).
    expect(journal(id).map((e) => e.action)).toEqual(['error', 'create', 'kill', 'exit', 'destroy']);
  });
});

describe('linux.cgroupsPath', () => {
  it('absolute: "/cordon-test/<id>" under every hierarchy\'s root (memory too); the parent it made goes with delete', async () => {
    const id = nextId('abs');
    const b = withResources({ memory: { limit: 48 * MiB }, pids: { limit: 33 } }, ['sleep', '1000'], (s) => {
      s.linux.cgroupsPath = `/cordon-test/${id}`;
    });
    const pid = await runDetached(b, id);
    const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
    expect(cg).toHaveLength(HIERARCHIES.length);
    for (const line of cg) expect(line.split(':')[2], line).toBe(`/cordon-test/${id}`);
    expect(cgValue(join(CG, 'memory', 'cordon-test', id), 'memory.limit_in_bytes')).toBe(String(48 * MiB));
    expect(cgValue(join(CG, 'pids', 'cordon-test', id), 'pids.max')).toBe('33');
    expect(procsOf(join(CG, 'unified', 'cordon-test', id))).toEqual([pid]);
    const d = await cordon(root, ['delete', '--force', id]);
    expect(d.code, d.stderr).toBe(0);
    expectGone(id, b);
    for (const h of HIERARCHIES) expect(existsSync(join(CG, h, 'cordon-test')), h).toBe(parents['cordon-test']);
  });

  it('relative: under the runtime\'s own cgroup in each hierarchy (memory nested in ours)', async () => {
    const id = nextId('rel');
    const rel = `${PREFIX}-rel/${id}`;
    const b = withResources({ memory: { limit: 40 * MiB } }, ['sleep', '1000'], (s) => {
      s.linux.cgroupsPath = rel;
    });
    const pid = await runDetached(b, id);
    const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    expect(lines).toContain(`:memory:${join(own.memory, rel)}\n`);
    expect(lines).toContain(`:pids:${join(own.pids, rel)}\n`);
    expect(lines).toContain(`0::${join(own.unified, rel)}\n`);
    expect(cgValue(cgDir('memory', rel), 'memory.limit_in_bytes')).toBe(String(40 * MiB));
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    expectGone(id, b);
    expect(cgroupDirsNamed(`${PREFIX}-rel`)).toEqual([]);
  });

  it('the systemd form "system.slice:cordon:x" is refused with a clear error, nothing left', async () => {
    const id = nextId('sysd');
    const b = withResources({ memory: { limit: 40 * MiB } }, ['sleep', '1000'], (s) => {
      s.linux.cgroupsPath = 'system.slice:cordon:x';
    });
    const r = await cordon(root, ['create', '-b', b.dir, id]);
    expect(r.code).toBe(1);
    expect(theError(r)).toBe(
      'cordon: linux.cgroupsPath: "system.slice:cordon:x" is in the systemd driver\'s "slice:prefix:name" form; the systemd cgroup driver is not supported (cordon manages cgroupfs directly)',
    );
    expectGone(id, b);
    expect(cgroupDirsNamed('system.slice')).toEqual([]);
  });
});

describe('limits enforced', () => {
  it('a 32 MiB memory limit (no swap) OOM-kills the process: exit 137, `oom` and `exit{oomKilled}` in the journal', async () => {
    const id = nextId('oom');
    const b = withResources({ memory: { limit: 32 * MiB, swap: 32 * MiB } }, ['sh', '-c', 'a=x; while :; do a=$a$a; done']);
    const r = await cordon(root, ['run', '-b', b.dir, id], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(137);
    const events = journal(id);
    expect(events.map((e) => e.action)).toEqual(['create', 'start', 'oom', 'exit', 'destroy']);
    const exit = events.find((e) => e.action === 'exit');
    expect(exit?.attributes).toMatchObject({ signal: 9, exitCode: null, oomKilled: true });
    expect([exit?.from, exit?.to]).toEqual(['running', 'stopped']);
    expectGone(id, b);
  });

  it('`cordon events ID` prints an oom line when a process inside OOMs while init survives', async () => {
    const id = nextId('oomev');
    // The init waits for the host's go (a file in its /dev/shm), runs the hog as a child, survives it.
    const script = 'while [ ! -e /dev/shm/go ]; do sleep 0.05; done; sh -c "a=x; while :; do a=\\$a\\$a; done"; echo child-died; sleep 100';
    const b = withResources({ memory: { limit: 32 * MiB, swap: 32 * MiB } }, ['sh', '-c', script]);
    const pid = await runDetached(b, id);
    const ev = startCordon(root, ['events', '--interval', '10s', id], { timeoutMs: 30_000 });
    try {
      // The first stats line is printed after the OOM watch is registered.
      await waitFor('the first stats line', () => ev.stdoutNow().includes('"type":"stats"'));
      writeFileSync(`/proc/${pid}/root/dev/shm/go`, '');
      await waitFor('an oom line', () => ev.stdoutNow().split('\n').some((l) => l === JSON.stringify({ type: 'oom', id })));
    } finally {
      ev.child.kill('SIGTERM');
    }
    await ev.done;
    const oomControl = readCg(cgDir('memory', id), 'memory.oom_control');
    expect(Number(/^oom_kill (\d+)$/m.exec(oomControl)?.[1])).toBeGreaterThanOrEqual(1);
    expect((await stateOf(root, id)).status).toBe('running');
    expect(alive(pid)).toBe(true);
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    expectGone(id, b);
  });

  it('pids.limit 20 stops a fork bomb: forks fail, pids.current never above 20', async () => {
    const id = nextId('pids');
    const bomb = 'for i in $(seq 100); do sleep 10 & done; wait';
    const b = withResources({ pids: { limit: 20 } }, ['sh', '-c', `sh -c '${bomb}'; echo bomb-over; exec sleep 100`]);
    const out = startCordon(root, ['run', '-d', '-b', b.dir, id]);
    expect((await out.done).code).toBe(0);
    const dir = cgDir('pids', id);
    let max = 0;
    await waitFor('the bomb to end', () => {
      max = Math.max(max, Number(cgValue(dir, 'pids.current')));
      return out.stdoutNow().includes('bomb-over');
    });
    for (let i = 0; i < 10; i++) {
      max = Math.max(max, Number(cgValue(dir, 'pids.current')));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(cgValue(dir, 'pids.max')).toBe('20');
    expect(max).toBeGreaterThan(10);
    expect(max).toBeLessThanOrEqual(20);
    expect(Number(cgValue(dir, 'pids.peak'))).toBe(20); // the kernel's own high-water mark
    expect(Number(/^max (\d+)$/m.exec(readCg(dir, 'pids.events'))?.[1])).toBeGreaterThan(0);
    expect(readFileSync(out.stderrFile, 'utf8')).toMatch(/sh: can't fork: Resource temporarily unavailable/);
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    expectGone(id, b);
  });
});

describe('verbs on a running container', () => {
  it(`pause freezes every process (state D, FROZEN, status paused), resume lets them run on; update; ps; events --stats; delete --force while paused${WEIGHT_FILE ? '' : ' (no blkio weight update: this kernel has no BFQ, the update is refused)'}`, async () => {
    const id = nextId('verbs');
    // The counter is the size of a file the loop appends to (never empty or half-written, unlike a rewritten number).
    const loop = 'sleep 1000 & while :; do echo -n x >> /dev/shm/n; done';
    const b = withResources({ memory: { limit: 128 * MiB }, hugepageLimits: [{ pageSize: '2MB', limit: 2 * MiB }] }, ['sh', '-c', loop]);
    const pid = await runDetached(b, id);
    const counter = () => waitFor('the counter to start', () => (existsSync(`/proc/${pid}/root/dev/shm/n`) ? statSync(`/proc/${pid}/root/dev/shm/n`).size : 0));

    // ps: the host pids, as every hierarchy's cgroup.procs lists them.
    const pids = await waitFor('two processes', async () => {
      const p = await psJson(id);
      return p.length === 2 ? p : undefined;
    });
    expect(pids).toContain(pid);
    for (const h of ['pids', 'memory', 'devices', 'freezer', 'unified']) expect(procsOf(cgDir(h, id)), h).toEqual(pids);
    const table = await cordon(root, ['ps', id]);
    expect(table.code, table.stderr).toBe(0);
    const [header, ...rows] = table.stdout.trim().split('\n');
    const col = header.trim().split(/\s+/).indexOf('PID');
    expect(col).toBeGreaterThanOrEqual(0);
    expect(rows.map((l) => Number(l.trim().split(/\s+/)[col])).sort((a, c) => a - c)).toEqual(pids);

    // pause
    const before = await counter();
    expect((await cordon(root, ['pause', id])).code).toBe(0);
    expect(cgValue(cgDir('freezer', id), 'freezer.state')).toBe('FROZEN');
    for (const p of pids) expect(procState(p), `pid ${p}`).toBe('D');
    expect((await stateOf(root, id)).status).toBe('paused');
    const frozenAt = await counter();
    expect(frozenAt).toBeGreaterThan(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(await counter()).toBe(frozenAt);
    // resume
    expect((await cordon(root, ['resume', id])).code).toBe(0);
    expect((await stateOf(root, id)).status).toBe('running');
    expect(cgValue(cgDir('freezer', id), 'freezer.state')).toBe('THAWED');
    await waitFor('every process out of D', () => pids.every((p) => procState(p) !== 'D'));
    await waitFor('the counter to move on', async () => (await counter()) > frozenAt);

    // update --memory, then update -r - (JSON on stdin)
    const mem = cgDir('memory', id);
    const u1 = await cordon(root, ['update', '--memory', '64m', id]);
    expect(u1.code, u1.stderr).toBe(0);
    expect(cgValue(mem, 'memory.limit_in_bytes')).toBe(String(64 * MiB));
    // The blkio weight only where the kernel has one (without BFQ it is refused: the resource tests above).
    const json = { memory: { limit: 96 * MiB, swap: 192 * MiB }, cpu: { shares: 256, quota: 20000, period: 50000 }, pids: { limit: 50 }, ...(WEIGHT_FILE ? { blockIO: { weight: 300 } } : {}) };
    const u2 = spawnSync(process.execPath, [CLI, '--root', root, 'update', '-r', '-', id], { input: JSON.stringify(json), env: cliEnv(), encoding: 'utf8', timeout: 20_000 });
    expect(u2.status, u2.stderr).toBe(0);
    expect(cgValue(mem, 'memory.limit_in_bytes')).toBe(String(96 * MiB));
    expect(cgValue(mem, 'memory.memsw.limit_in_bytes')).toBe(String(192 * MiB));
    expect(cgValue(cgDir('cpu', id), 'cpu.shares')).toBe('256');
    expect(cgValue(cgDir('cpu', id), 'cpu.cfs_quota_us')).toBe('20000');
    expect(cgValue(cgDir('cpu', id), 'cpu.cfs_period_us')).toBe('50000');
    expect(cgValue(cgDir('pids', id), 'pids.max')).toBe('50');
    if (WEIGHT_FILE) expect(cgValue(cgDir('blkio', id), WEIGHT_FILE)).toBe('300');
    expect(journal(id).filter((e) => e.action === 'update')).toHaveLength(2);
    if (!WEIGHT_FILE) {
      // Refused with the reason; the container runs on. The journal has the `update` fact, then the `error` after it.
      const message = `blockIO.weight: open ${cgDir('blkio', id)}/blkio.bfq.weight: no such file or directory (this host's kernel has neither blkio.weight nor blkio.bfq.weight: no CFQ or BFQ I/O scheduler is available)`;
      const u3 = await cordon(root, ['update', '--blkio-weight', '300', id]);
      expect(u3.code).toBe(1);
      expect(theError(u3)).toBe(`cordon: ${message}`);
      expect((await stateOf(root, id)).status).toBe('running');
      expect(journal(id).slice(-2).map((e) => [e.action, e.attributes])).toEqual([
        ['update', { resources: { blockIO: { weight: 300 } } }],
        ['error', { step: 'update', message }],
      ]);
    }

    // events --stats: one runc-format line.
    const st = await cordon(root, ['events', '--stats', id]);
    expect(st.code, st.stderr).toBe(0);
    const lines = st.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const ev = JSON.parse(lines[0]) as { type: string; id: string; data: Record<string, any> };
    expect([ev.type, ev.id]).toEqual(['stats', id]);
    expect(Object.keys(ev.data)).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids', 'blkio', 'hugetlb']));
    expect(ev.data.memory.usage.usage).toBeGreaterThan(0);
    expect(ev.data.memory.usage.limit).toBe(96 * MiB);
    expect(ev.data.memory.swap.limit).toBe(192 * MiB);
    expect(ev.data.cpu.usage.total).toBeGreaterThan(0);
    expect(ev.data.cpu.usage.percpu).toHaveLength(Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()));
    expect(ev.data.pids).toEqual({ current: 2, limit: 50 });
    expect(ev.data.blkio).toEqual({ ioServiceBytesRecursive: expect.any(Array), ioServicedRecursive: expect.any(Array) });
    expect(ev.data.hugetlb['2MB']).toEqual({ usage: 0, max: 0, failcnt: 0 });
    expect(cgValue(cgDir('unified', id), 'hugetlb.2MB.max')).toBe(String(2 * MiB));

    // delete of a paused container: refused without --force, done with it.
    expect((await cordon(root, ['pause', id])).code).toBe(0);
    const refused = await cordon(root, ['delete', id]);
    expect(refused.code).toBe(1);
    expect(theError(refused)).toBe(`cordon: cannot delete container ${id} that is not stopped: paused`);
    const d = await cordon(root, ['delete', '--force', id]);
    expect(d.code, d.stderr).toBe(0);
    for (const p of pids) expect(alive(p), `pid ${p}`).toBe(false);
    expectGone(id, b);
  });

  it('kill --all ID KILL kills every process, not only init (no pid namespace: nothing else would)', async () => {
    const id = nextId('killall');
    const b = withResources({ pids: { limit: 20 } }, ['sh', '-c', 'sleep 1000 & sleep 1000 & wait'], (s) => {
      s.linux.namespaces = (s.linux.namespaces ?? []).filter((n) => n.type !== 'pid');
    });
    const pid = await runDetached(b, id);
    const pids = await waitFor('three processes', async () => {
      const p = await psJson(id);
      return p.length === 3 ? p : undefined;
    });
    expect(pids).toContain(pid);
    const k = await cordon(root, ['kill', '--all', id, 'KILL']);
    expect(k.code, k.stderr).toBe(0);
    await waitFor('every process to be gone', () => pids.every((p) => !alive(p)));
    await waitFor('the cgroup to empty', () => procsOf(cgDir('pids', id)).length === 0);
    expect((await stateOf(root, id)).status).toBe('stopped');
    expect(journal(id).find((e) => e.action === 'kill')?.attributes).toMatchObject({ signal: 9, all: true });
    const d = await cordon(root, ['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expectGone(id, b);
  });
});

describe('nothing of this file is left', () => {
  it('no cgroup directory named after any of its containers in any hierarchy', () => {
    expect(cgroupDirsNamed(PREFIX)).toEqual([]);
    expect(stateEntries(root)).toEqual([]);
    expect(basename(root)).toMatch(/^cordon-it-cgroups-/);
  });
});
