/**
 * config/resources.ts: `linux.resources` to CgroupResources (exact typed values, runc's device rule
 * defaults), JSON-path errors for every kind of mistake, runc's kernel memory warning, and the wiring into
 * validateSpec (setup.resources and setup.cgroupsPath).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RUNC_ALLOWED_DEVICES } from '../../config/validate.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/config-error.js';
import { Issues } from '../../config/issues.js';
import { convertResources } from '../../config/resources.js';
import { validateSpec } from '../../config/validate.js';

function convert(raw: unknown, base?: string) {
  const issues = new Issues();
  const r = convertResources(issues, raw, base);
  return { r, errors: issues.errors.map((e) => `${e.path}: ${e.message}`), warnings: issues.warnings };
}

describe('convertResources', () => {
  it('converts every section with exact values', () => {
    const { r, errors, warnings } = convert({
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'wr' },
        { allow: true, type: 'b', major: 8, access: 'm' },
      ],
      memory: { limit: 67108864, reservation: 33554432, swap: -1, swappiness: 10, disableOOMKiller: true, checkBeforeUpdate: true },
      cpu: { shares: 1024, quota: -1, period: 100000, burst: 0, realtimeRuntime: 950, realtimePeriod: 1000, cpus: '0-1, 3', mems: '0', idle: 1 },
      pids: { limit: 100 },
      blockIO: {
        weight: 500,
        leafWeight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 10n }],
      },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
      network: { classID: 1048577, priorities: [{ name: 'eth0', priority: 5 }] },
      rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 10000 } },
      unified: { 'memory.high': '1000000' },
    });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(r).toEqual({
      devices: [
        { allow: false, type: 'a', major: -1, minor: -1, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' },
        { allow: true, type: 'b', major: 8, minor: -1, access: 'm' },
      ],
      memory: { limit: 67108864n, reservation: 33554432n, swap: -1n, swappiness: 10n, disableOOMKiller: true, checkBeforeUpdate: true },
      cpu: { shares: 1024n, quota: -1n, period: 100000n, burst: 0n, realtimeRuntime: 950n, realtimePeriod: 1000n, cpus: '0-1,3', mems: '0', idle: 1n },
      pids: { limit: 100n },
      blockIO: {
        weight: 500,
        leafWeight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576n }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 10n }],
      },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304n }],
      network: { classID: 1048577, priorities: [{ name: 'eth0', priority: 5 }] },
      rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 10000 } },
      unified: { 'memory.high': '1000000' },
    });
  });

  it('is undefined when absent and {} when empty', () => {
    expect(convert(undefined).r).toBeUndefined();
    expect(convert(null).r).toBeUndefined();
    expect(convert({}).r).toEqual({});
  });

  it('keeps kernel memory with runc\'s warning (the manager ignores it, as runc 1.1)', () => {
    const { r, warnings } = convert({ memory: { kernel: 1024, kernelTCP: 2048, useHierarchy: false } });
    expect(r?.memory).toEqual({ kernel: 1024n, kernelTCP: 2048n, useHierarchy: false });
    expect(warnings).toEqual([
      'linux.resources.memory.kernel: Kernel memory settings are ignored and will be removed',
      'linux.resources.memory.useHierarchy: ignored: memory accounting is always hierarchical on current kernels (runc ignores it too)',
    ]);
  });

  it('reports every mistake with its JSON path', () => {
    const { errors } = convert({
      devices: [{ access: 'rwm' }, { allow: true, type: 'u', access: 'r' }, { allow: true, access: '' }, { allow: true, access: 'rx' }, 7],
      memory: { limit: 'lots', swappiness: 101, disableOOMKiller: 'yes' },
      cpu: { shares: -1, cpus: 'all', quota: 1.5 },
      pids: {},
      blockIO: { weight: 70000, throttleReadBpsDevice: [{ major: 8, rate: 1 }] },
      hugepageLimits: [{ pageSize: '2M', limit: 1 }, { limit: 1 }],
      network: { classID: -1, priorities: [{ name: 'eth0' }] },
      rdma: { mlx5_0: { hcaHandles: -2 } },
      unified: { 'a/b': '1', 'cpu.max': 5 },
    });
    expect(errors).toEqual([
      'linux.resources.devices[0].allow: required field is missing',
      'linux.resources.devices[1].type: invalid cgroup device type "u" (expected a, b or c)',
      'linux.resources.devices[2].access: device access cannot be empty',
      'linux.resources.devices[3].access: invalid device access "rx" (any of "rwm")',
      'linux.resources.devices[4]: expected an object, got 7',
      'linux.resources.memory.limit: expected an integer, got "lots"',
      'linux.resources.memory.disableOOMKiller: expected true or false, got "yes"',
      'linux.resources.memory.swappiness: invalid memory swappiness value: 101 (valid range is 0-100)',
      'linux.resources.cpu.shares: expected a non-negative integer, got -1',
      'linux.resources.cpu.quota: expected an integer, got 1.5',
      'linux.resources.cpu.cpus: invalid list "all" (expected numbers and ranges like "0-3,5")',
      'linux.resources.pids.limit: required field is missing',
      'linux.resources.blockIO.weight: must be at most 65535, got 70000',
      'linux.resources.blockIO.throttleReadBpsDevice[0].minor: required field is missing',
      'linux.resources.hugepageLimits[0].pageSize: invalid hugepage size "2M" (expected a size like "2MB" or "1GB")',
      'linux.resources.hugepageLimits[1].pageSize: required field is missing',
      'linux.resources.network.priorities[0].priority: required field is missing',
      'linux.resources.network.classID: expected a non-negative integer, got -1',
      'linux.resources.rdma.mlx5_0.hcaHandles: expected a non-negative integer, got -2',
      'linux.resources.unified["a/b"]: unified resource "a/b" must be a file name (no slashes)',
      'linux.resources.unified["cpu.max"]: expected a string, got 5',
    ]);
  });

  it('uses the given base path (runc update --resources)', () => {
    expect(convert([], 'resources').errors).toEqual(['resources: expected an object, got an array']);
    expect(convert({ pids: { limit: 'x' } }, 'resources').errors).toEqual(['resources.pids.limit: expected an integer, got "x"']);
  });

  it('keeps 64-bit values exact as bigints and refuses imprecise numbers', () => {
    expect(convert({ memory: { limit: 9223372036854775807n } }).r?.memory?.limit).toBe(9223372036854775807n);
    expect(convert({ memory: { limit: 2 ** 60 } }).errors).toEqual([
      'linux.resources.memory.limit: 1152921504606847000 is beyond 2^53 and not exact as a JavaScript number; pass it as a bigint',
    ]);
  });
});

describe('validateSpec wiring', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  function spec(linux: Record<string, unknown>) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-res-'));
    dirs.push(dir);
    fs.mkdirSync(path.join(dir, 'rootfs'));
    const raw = { ociVersion: '1.0.2', root: { path: 'rootfs' }, process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } }, linux: { namespaces: [{ type: 'mount' }], ...linux } };
    return () => validateSpec(raw, dir);
  }

  it('puts resources and cgroupsPath into the setup', () => {
    const v = spec({ resources: { pids: { limit: 5 }, memory: { kernel: 1 } }, cgroupsPath: '/cordon/x' })();
    // runc's allowed devices follow the config's own device rules (none here).
    expect(v.setup.resources).toEqual({ pids: { limit: 5n }, memory: { kernel: 1n }, devices: [...RUNC_ALLOWED_DEVICES] });
    expect(v.setup.cgroupsPath).toBe('/cordon/x');
    expect(v.warnings).toContain('linux.resources.memory.kernel: Kernel memory settings are ignored and will be removed');
    const none = spec({})();
    expect(none.setup.resources).toEqual({ devices: [...RUNC_ALLOWED_DEVICES] });
    expect(RUNC_ALLOWED_DEVICES.map((d) => `${d.type} ${d.major}:${d.minor} ${d.access}`)).toEqual([
      'c -1:-1 m', 'b -1:-1 m', 'c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 136:-1 rwm', 'c 5:2 rwm', 'c 10:200 rwm',
    ]);
    expect(none.setup.cgroupsPath).toBeUndefined();
  });

  it('rejects bad resources and cgroupsPath values with their paths', () => {
    const issues = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
      }
      return [];
    };
    expect(issues(spec({ resources: { pids: { limit: 'x' } } }))).toEqual(['linux.resources.pids.limit: expected an integer, got "x"']);
    expect(issues(spec({ cgroupsPath: 'machine.slice:cordon:x' }))).toEqual([
      'linux.cgroupsPath: "machine.slice:cordon:x" is in the systemd driver\'s "slice:prefix:name" form; the systemd cgroup driver is not supported (cordon manages cgroupfs directly)',
    ]);
    expect(issues(spec({ cgroupsPath: '/../x' }))).toEqual(['linux.cgroupsPath: "/../x" climbs out of the cgroup hierarchy root with ".."']);
  });
});
