/**
 * `linux.namespaces`, the user namespace id mappings and time offsets, checked with runc's rules: known
 * types, no duplicates, joined namespaces by an existing absolute path, mappings only with a user
 * namespace and required when creating one, offsets only with a new time namespace.
 */
import { existsSync, statSync } from 'node:fs';
import type { IdMapping, NamespaceSetup, NamespaceType } from './model.js';
import {
  INT64_MAX,
  INT64_MIN,
  UINT32,
  checkAbsolute,
  describeValue,
  readArray,
  readBigInteger,
  readInteger,
  readObject,
  readString,
  requireInteger,
} from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** Namespace types of the spec, with the /proc/self/ns entry that tells whether the kernel has them. */
export const NAMESPACE_KERNEL_FILES: Readonly<Record<NamespaceType, string>> = {
  pid: '/proc/self/ns/pid',
  network: '/proc/self/ns/net',
  mount: '/proc/self/ns/mnt',
  ipc: '/proc/self/ns/ipc',
  uts: '/proc/self/ns/uts',
  user: '/proc/self/ns/user',
  cgroup: '/proc/self/ns/cgroup',
  time: '/proc/self/timens_offsets',
};

/** The kernel's limit on lines in uid_map / gid_map (since Linux 4.15). */
export const MAX_ID_MAP_LINES = 340;

/** Whether `t` is a namespace type of the spec. */
export function isNamespaceType(t: string): t is NamespaceType {
  return Object.hasOwn(NAMESPACE_KERNEL_FILES, t);
}

/** The namespace list, with helpers for the rules other sections depend on. */
export class NamespaceSet {
  /** @param list - the validated namespaces, in config order */
  constructor(readonly list: readonly NamespaceSetup[]) {}

  /** Whether the container gets (creates or joins) a namespace of type `t` — runc's `Contains`. */
  has(t: NamespaceType): boolean {
    return this.list.some((n) => n.type === t);
  }

  /** Whether the container creates a fresh namespace of type `t`. */
  creates(t: NamespaceType): boolean {
    return this.list.some((n) => n.type === t && n.path === undefined);
  }

  /** Path of the namespace of type `t` to join, if it is joined. */
  pathOf(t: NamespaceType): string | undefined {
    return this.list.find((n) => n.type === t)?.path;
  }
}

/**
 * Check `linux.namespaces`. Unknown types, duplicates, relative or missing paths and namespace types
 * the running kernel lacks are errors.
 *
 * @param issues - where errors go
 * @param raw - the `linux.namespaces` value
 */
export function convertNamespaces(issues: Issues, raw: unknown): NamespaceSet {
  const base = 'linux.namespaces';
  const list = readArray(issues, base, raw) ?? [];
  const out: NamespaceSetup[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    const p = indexPath(base, i);
    const ns = readObject(issues, p, entry);
    if (ns === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const tp = childPath(p, 'type');
    const type = readString(issues, tp, ns.type);
    if (type === undefined) {
      if (ns.type === undefined || ns.type === null) issues.error(tp, 'required field is missing');
      return;
    }
    if (!isNamespaceType(type)) {
      issues.error(tp, `unknown namespace type ${JSON.stringify(type)} (expected one of ${Object.keys(NAMESPACE_KERNEL_FILES).join(', ')})`);
      return;
    }
    const first = seen.get(type);
    if (first !== undefined) {
      issues.error(tp, `duplicate namespace ${JSON.stringify(type)} (already at ${indexPath(base, first)})`);
      return;
    }
    seen.set(type, i);
    if (!existsSync(NAMESPACE_KERNEL_FILES[type])) {
      issues.error(tp, `${type} namespaces are not supported by the running kernel (no ${NAMESPACE_KERNEL_FILES[type]})`);
    }
    const pp = childPath(p, 'path');
    const nsPath = readString(issues, pp, ns.path);
    if (nsPath === undefined || nsPath === '') {
      out.push({ type });
      return;
    }
    if (!checkAbsolute(issues, pp, nsPath)) return;
    if (!existsSync(nsPath)) {
      issues.error(pp, `namespace path ${JSON.stringify(nsPath)} does not exist`);
      return;
    }
    out.push({ type, path: nsPath });
  });
  return new NamespaceSet(out);
}

/** Check one id mapping list (`linux.uidMappings` or `linux.gidMappings`): uint32 fields, size >= 1, no overlaps. */
export function convertIdMappings(issues: Issues, base: string, raw: unknown): IdMapping[] {
  const list = readArray(issues, base, raw) ?? [];
  if (list.length > MAX_ID_MAP_LINES) issues.error(base, `at most ${MAX_ID_MAP_LINES} ranges are allowed by the kernel, got ${list.length}`);
  const out: { m: IdMapping; index: number }[] = [];
  list.forEach((entry, i) => {
    const p = indexPath(base, i);
    const o = readObject(issues, p, entry);
    if (o === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const containerID = requireInteger(issues, childPath(p, 'containerID'), o.containerID, UINT32);
    const hostID = requireInteger(issues, childPath(p, 'hostID'), o.hostID, UINT32);
    const size = requireInteger(issues, childPath(p, 'size'), o.size, { min: 1, max: UINT32.max });
    if (containerID === undefined || hostID === undefined || size === undefined) return;
    if (containerID + size > 2 ** 32 || hostID + size > 2 ** 32) {
      issues.error(childPath(p, 'size'), `range ends beyond 2^32 (${size} ids from ${Math.max(containerID, hostID)})`);
      return;
    }
    const m: IdMapping = { containerID, hostID, size };
    for (const prev of out) {
      const overlaps = (a: number, b: number) => a < b + prev.m.size && b < a + size;
      if (overlaps(containerID, prev.m.containerID)) issues.error(p, `container ids overlap ${indexPath(base, prev.index)}`);
      else if (overlaps(hostID, prev.m.hostID)) issues.error(p, `host ids overlap ${indexPath(base, prev.index)}`);
    }
    out.push({ m, index: i });
  });
  return out.map((e) => e.m);
}

/** Result of checking the user namespace mappings against the namespace list. */
export interface UserNamespaceMappings {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

/**
 * Check `linux.uidMappings` / `linux.gidMappings` against the namespaces: only allowed with a user
 * namespace, required when creating one. When joining a user namespace the mappings are that namespace's
 * own; any given in the config are dropped with a warning (nothing is written to uid_map then).
 */
export function convertUserMappings(issues: Issues, linux: Record<string, unknown>, ns: NamespaceSet): UserNamespaceMappings {
  const uid = convertIdMappings(issues, 'linux.uidMappings', linux.uidMappings);
  const gid = convertIdMappings(issues, 'linux.gidMappings', linux.gidMappings);
  if (!ns.has('user')) {
    if (uid.length > 0) issues.error('linux.uidMappings', 'user namespace mappings specified, but linux.namespaces has no "user" namespace');
    if (gid.length > 0) issues.error('linux.gidMappings', 'user namespace mappings specified, but linux.namespaces has no "user" namespace');
    return { uidMappings: [], gidMappings: [] };
  }
  if (ns.creates('user')) {
    if (uid.length === 0) issues.error('linux.uidMappings', 'required when creating a user namespace');
    if (gid.length === 0) issues.error('linux.gidMappings', 'required when creating a user namespace');
    return { uidMappings: uid, gidMappings: gid };
  }
  if (uid.length > 0 || gid.length > 0) {
    issues.warn('linux.uidMappings', 'ignored: the user namespace is joined by path and keeps its own mappings');
  }
  return { uidMappings: [], gidMappings: [] };
}

/** Clocks a time namespace can offset. */
export const TIME_OFFSET_CLOCKS = ['monotonic', 'boottime'] as const;

/**
 * Check `linux.timeOffsets`: only with a new time namespace; clocks monotonic/boottime; secs int64,
 * nanosecs below 10^9. The offsets are not part of ContainerSetup yet, so valid ones draw a warning.
 */
export function checkTimeOffsets(issues: Issues, raw: unknown, ns: NamespaceSet): void {
  const base = 'linux.timeOffsets';
  const offsets = readObject(issues, base, raw);
  if (offsets === undefined || Object.keys(offsets).length === 0) return;
  const before = issues.errorCount;
  if (!ns.has('time')) issues.error(base, 'time namespace offsets specified, but linux.namespaces has no "time" namespace');
  else if (!ns.creates('time')) issues.error(base, 'offsets can only be set on a new time namespace, not a joined one');
  for (const [clock, v] of Object.entries(offsets)) {
    const p = childPath(base, clock);
    if (!(TIME_OFFSET_CLOCKS as readonly string[]).includes(clock)) {
      issues.error(p, `unknown clock ${JSON.stringify(clock)} (expected monotonic or boottime)`);
      continue;
    }
    const o = readObject(issues, p, v);
    if (o === undefined) continue;
    readBigInteger(issues, childPath(p, 'secs'), o.secs, INT64_MIN, INT64_MAX);
    readInteger(issues, childPath(p, 'nanosecs'), o.nanosecs, { min: 0, max: 999_999_999 });
  }
  if (issues.errorCount === before) issues.warn(base, 'not applied: cordon does not set time namespace offsets yet');
}

/** Whether `nsPath` is the caller's own network namespace (runc's isHostNetNS: same device and inode). */
export function isHostNetworkNamespace(nsPath: string): boolean {
  const a = statSync('/proc/self/ns/net');
  const b = statSync(nsPath);
  return a.dev === b.dev && a.ino === b.ino;
}
