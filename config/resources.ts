/**
 * `linux.resources` to the cgroup layer's CgroupResources: every field type- and range-checked with its
 * JSON path, device rules in runc's form (type "a" and wildcard majors/minors when left out, access
 * required), 64-bit values kept exact as bigints. Kernel memory limits are accepted with runc 1.1's warning
 * and then ignored, as runc ignores them.
 */
import type { BlockDeviceValue, CgroupResources, DeviceRule } from './model.js';
import {
  INT64_MAX,
  INT64_MIN,
  UINT32,
  UINT64_MAX,
  describeValue,
  isAbsent,
  readArray,
  readBigInteger,
  readBoolean,
  readInteger,
  readObject,
  readString,
  requireBigInteger,
  requireInteger,
  requireString,
  type JsonObject,
} from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

const UINT16 = { min: 0, max: 0xffff };
/** Device numbers in rules: -1 (any) or a 32-bit value. */
const DEVICE_NUMBER = { min: -1, max: 0xffff_ffff };
const BLOCK_DEVICE_NUMBER = { min: 0, max: 0xffff_ffff };

/** A cpuset list: "0-3,5,7-8". */
const CPU_LIST = /^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/;
/** A hugetlb page size as the kernel names it in file names: "2MB", "1GB", "64KB". */
const PAGE_SIZE = /^\d+(KB|MB|GB|TB|PB)$/;

const int64 = (issues: Issues, p: string, v: unknown) => readBigInteger(issues, p, v, INT64_MIN, INT64_MAX);
const uint64 = (issues: Issues, p: string, v: unknown) => readBigInteger(issues, p, v, 0n, UINT64_MAX);

/** Drop undefined members (so `{}` means "nothing asked"). */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

function convertMemory(issues: Issues, base: string, o: JsonObject): CgroupResources['memory'] {
  const p = (k: string) => childPath(base, k);
  const m = compact({
    limit: int64(issues, p('limit'), o.limit),
    reservation: int64(issues, p('reservation'), o.reservation),
    swap: int64(issues, p('swap'), o.swap),
    kernel: int64(issues, p('kernel'), o.kernel),
    kernelTCP: int64(issues, p('kernelTCP'), o.kernelTCP),
    swappiness: uint64(issues, p('swappiness'), o.swappiness),
    disableOOMKiller: isAbsent(o.disableOOMKiller) ? undefined : readBoolean(issues, p('disableOOMKiller'), o.disableOOMKiller, false),
    useHierarchy: isAbsent(o.useHierarchy) ? undefined : readBoolean(issues, p('useHierarchy'), o.useHierarchy, true),
    checkBeforeUpdate: isAbsent(o.checkBeforeUpdate) ? undefined : readBoolean(issues, p('checkBeforeUpdate'), o.checkBeforeUpdate, false),
  });
  if (m.swappiness !== undefined && m.swappiness > 100n) {
    issues.error(p('swappiness'), `invalid memory swappiness value: ${m.swappiness} (valid range is 0-100)`);
  }
  if (m.kernel !== undefined || m.kernelTCP !== undefined) {
    issues.warn(m.kernel !== undefined ? p('kernel') : p('kernelTCP'), 'Kernel memory settings are ignored and will be removed');
  }
  if (m.useHierarchy === false) issues.warn(p('useHierarchy'), 'ignored: memory accounting is always hierarchical on current kernels (runc ignores it too)');
  return m;
}

function readCpuList(issues: Issues, p: string, v: unknown): string | undefined {
  const s = readString(issues, p, v);
  if (s === undefined || s === '') return undefined;
  if (!CPU_LIST.test(s)) {
    issues.error(p, `invalid list ${JSON.stringify(s)} (expected numbers and ranges like "0-3,5")`);
    return undefined;
  }
  return s.replace(/\s+/g, '');
}

function convertCpu(issues: Issues, base: string, o: JsonObject): CgroupResources['cpu'] {
  const p = (k: string) => childPath(base, k);
  return compact({
    shares: uint64(issues, p('shares'), o.shares),
    quota: int64(issues, p('quota'), o.quota),
    burst: uint64(issues, p('burst'), o.burst),
    period: uint64(issues, p('period'), o.period),
    realtimeRuntime: int64(issues, p('realtimeRuntime'), o.realtimeRuntime),
    realtimePeriod: uint64(issues, p('realtimePeriod'), o.realtimePeriod),
    cpus: readCpuList(issues, p('cpus'), o.cpus),
    mems: readCpuList(issues, p('mems'), o.mems),
    idle: int64(issues, p('idle'), o.idle),
  });
}

/** Each element of an optional array that is an object, with its path. */
function eachObject(issues: Issues, base: string, raw: unknown, f: (o: JsonObject, p: string) => void): boolean {
  const list = readArray(issues, base, raw);
  if (list === undefined) return false;
  list.forEach((e, i) => {
    const p = indexPath(base, i);
    const o = readObject(issues, p, e);
    if (o === undefined) {
      if (isAbsent(e)) issues.error(p, `expected an object, got ${describeValue(e)}`);
      return;
    }
    f(o, p);
  });
  return true;
}

function convertThrottle(issues: Issues, base: string, raw: unknown): BlockDeviceValue[] | undefined {
  const out: BlockDeviceValue[] = [];
  const given = eachObject(issues, base, raw, (o, p) => {
    const major = requireInteger(issues, childPath(p, 'major'), o.major, BLOCK_DEVICE_NUMBER);
    const minor = requireInteger(issues, childPath(p, 'minor'), o.minor, BLOCK_DEVICE_NUMBER);
    const rate = requireBigInteger(issues, childPath(p, 'rate'), o.rate, 0n, UINT64_MAX);
    if (major !== undefined && minor !== undefined && rate !== undefined) out.push({ major, minor, rate });
  });
  return given ? out : undefined;
}

function convertBlockIO(issues: Issues, base: string, o: JsonObject): CgroupResources['blockIO'] {
  const p = (k: string) => childPath(base, k);
  const weightDevice: BlockDeviceValue[] = [];
  const hasWeightDevice = eachObject(issues, p('weightDevice'), o.weightDevice, (d, dp) => {
    const major = requireInteger(issues, childPath(dp, 'major'), d.major, BLOCK_DEVICE_NUMBER);
    const minor = requireInteger(issues, childPath(dp, 'minor'), d.minor, BLOCK_DEVICE_NUMBER);
    const weight = readInteger(issues, childPath(dp, 'weight'), d.weight, UINT16);
    const leafWeight = readInteger(issues, childPath(dp, 'leafWeight'), d.leafWeight, UINT16);
    if (major !== undefined && minor !== undefined) weightDevice.push(compact({ major, minor, weight, leafWeight }));
  });
  return compact({
    weight: readInteger(issues, p('weight'), o.weight, UINT16),
    leafWeight: readInteger(issues, p('leafWeight'), o.leafWeight, UINT16),
    weightDevice: hasWeightDevice ? weightDevice : undefined,
    throttleReadBpsDevice: convertThrottle(issues, p('throttleReadBpsDevice'), o.throttleReadBpsDevice),
    throttleWriteBpsDevice: convertThrottle(issues, p('throttleWriteBpsDevice'), o.throttleWriteBpsDevice),
    throttleReadIOPSDevice: convertThrottle(issues, p('throttleReadIOPSDevice'), o.throttleReadIOPSDevice),
    throttleWriteIOPSDevice: convertThrottle(issues, p('throttleWriteIOPSDevice'), o.throttleWriteIOPSDevice),
  });
}

function convertDeviceRules(issues: Issues, base: string, raw: unknown): DeviceRule[] | undefined {
  const out: DeviceRule[] = [];
  const given = eachObject(issues, base, raw, (o, p) => {
    const before = issues.errorCount;
    const allowPath = childPath(p, 'allow');
    if (isAbsent(o.allow)) issues.error(allowPath, 'required field is missing');
    const allow = readBoolean(issues, allowPath, o.allow, false);
    const rawType = readString(issues, childPath(p, 'type'), o.type);
    const type = rawType === undefined || rawType === '' ? 'a' : rawType;
    if (type !== 'a' && type !== 'b' && type !== 'c') issues.error(childPath(p, 'type'), `invalid cgroup device type ${JSON.stringify(type)} (expected a, b or c)`);
    const major = readInteger(issues, childPath(p, 'major'), o.major, DEVICE_NUMBER) ?? -1;
    const minor = readInteger(issues, childPath(p, 'minor'), o.minor, DEVICE_NUMBER) ?? -1;
    const ap = childPath(p, 'access');
    const access = readString(issues, ap, o.access);
    if (access === undefined || access === '') {
      if (isAbsent(o.access) || access === '') issues.error(ap, 'device access cannot be empty');
    } else if (!/^[rwm]+$/.test(access)) {
      issues.error(ap, `invalid device access ${JSON.stringify(access)} (any of "rwm")`);
    }
    if (issues.errorCount !== before || access === undefined) return;
    const norm = [...'rwm'].filter((c) => access.includes(c)).join('');
    out.push({ allow, type: type as DeviceRule['type'], major, minor, access: norm });
  });
  return given ? out : undefined;
}

function convertNetwork(issues: Issues, base: string, o: JsonObject): CgroupResources['network'] {
  const priorities: Array<{ name: string; priority: number }> = [];
  const hasPriorities = eachObject(issues, childPath(base, 'priorities'), o.priorities, (e, p) => {
    const name = requireString(issues, childPath(p, 'name'), e.name);
    const priority = requireInteger(issues, childPath(p, 'priority'), e.priority, UINT32);
    if (name === '') issues.error(childPath(p, 'name'), 'interface name must not be empty');
    else if (name !== undefined && priority !== undefined) priorities.push({ name, priority });
  });
  return compact({ classID: readInteger(issues, childPath(base, 'classID'), o.classID, UINT32), priorities: hasPriorities ? priorities : undefined });
}

function convertRdma(issues: Issues, base: string, o: JsonObject): CgroupResources['rdma'] {
  const out: NonNullable<CgroupResources['rdma']> = {};
  for (const [name, v] of Object.entries(o)) {
    const p = childPath(base, name);
    if (name === '' || /\s/.test(name)) {
      issues.error(p, 'RDMA device names must be non-empty and without spaces');
      continue;
    }
    const e = readObject(issues, p, v);
    if (e === undefined) continue;
    out[name] = compact({ hcaHandles: readInteger(issues, childPath(p, 'hcaHandles'), e.hcaHandles, UINT32), hcaObjects: readInteger(issues, childPath(p, 'hcaObjects'), e.hcaObjects, UINT32) });
  }
  return out;
}

function convertUnified(issues: Issues, base: string, o: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    const p = childPath(base, k);
    if (k === '' || k === '.' || k === '..' || k.includes('/') || k.includes('\0')) {
      issues.error(p, `unified resource ${JSON.stringify(k)} must be a file name (no slashes)`);
      continue;
    }
    const s = readString(issues, p, v);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/**
 * Convert `linux.resources` (at JSON path `base`, default "linux.resources"). Returns undefined when it is
 * absent; otherwise the typed resources (problems are recorded in `issues`, and the fields in error are
 * left out).
 */
export function convertResources(issues: Issues, raw: unknown, base = 'linux.resources'): CgroupResources | undefined {
  const o = readObject(issues, base, raw);
  if (o === undefined) return undefined;
  const p = (k: string) => childPath(base, k);
  const r: CgroupResources = {};
  const devices = convertDeviceRules(issues, p('devices'), o.devices);
  if (devices !== undefined) r.devices = devices;
  const memory = readObject(issues, p('memory'), o.memory);
  if (memory) r.memory = convertMemory(issues, p('memory'), memory);
  const cpu = readObject(issues, p('cpu'), o.cpu);
  if (cpu) r.cpu = convertCpu(issues, p('cpu'), cpu);
  const pids = readObject(issues, p('pids'), o.pids);
  if (pids) {
    const limit = requireBigInteger(issues, childPath(p('pids'), 'limit'), pids.limit, INT64_MIN, INT64_MAX);
    if (limit !== undefined) r.pids = { limit };
  }
  const blockIO = readObject(issues, p('blockIO'), o.blockIO);
  if (blockIO) r.blockIO = convertBlockIO(issues, p('blockIO'), blockIO);
  const huge: NonNullable<CgroupResources['hugepageLimits']> = [];
  const hasHuge = eachObject(issues, p('hugepageLimits'), o.hugepageLimits, (h, hp) => {
    const pageSize = requireString(issues, childPath(hp, 'pageSize'), h.pageSize);
    if (pageSize !== undefined && !PAGE_SIZE.test(pageSize)) issues.error(childPath(hp, 'pageSize'), `invalid hugepage size ${JSON.stringify(pageSize)} (expected a size like "2MB" or "1GB")`);
    const limit = requireBigInteger(issues, childPath(hp, 'limit'), h.limit, 0n, UINT64_MAX);
    if (pageSize !== undefined && PAGE_SIZE.test(pageSize) && limit !== undefined) huge.push({ pageSize, limit });
  });
  if (hasHuge) r.hugepageLimits = huge;
  const network = readObject(issues, p('network'), o.network);
  if (network) r.network = convertNetwork(issues, p('network'), network);
  const rdma = readObject(issues, p('rdma'), o.rdma);
  if (rdma) r.rdma = convertRdma(issues, p('rdma'), rdma);
  const unified = readObject(issues, p('unified'), o.unified);
  if (unified) r.unified = convertUnified(issues, p('unified'), unified);
  return r;
}
