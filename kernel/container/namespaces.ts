/**
 * Namespaces of a container: which ones clone() creates, which ones the child joins with setns (user first,
 * mount last, as libcontainer), the pid namespace joined through the parent's pid_for_children, and the
 * uid/gid maps the parent writes while the child waits at its setup gate.
 */
import fs from 'node:fs';
import { CLONE } from '../sys/flags.js';
import type { IdMapping, NamespaceSetup, NamespaceType } from '../../config/model.js';

/** CLONE_NEW* flag of each namespace type. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  pid: CLONE.NEWPID,
  network: CLONE.NEWNET,
  mount: CLONE.NEWNS,
  ipc: CLONE.NEWIPC,
  uts: CLONE.NEWUTS,
  user: CLONE.NEWUSER,
  cgroup: CLONE.NEWCGROUP,
  time: CLONE.NEWTIME,
};

/** Name of each namespace type under /proc/PID/ns. */
export const NAMESPACE_PROC_NAMES: Readonly<Record<NamespaceType, string>> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

/** How the namespaces of a container come about. */
export interface NamespacePlan {
  /** Flags for clone(). */
  cloneFlags: number;
  /** Flags the child unshares itself after joining a user namespace (so they belong to it). */
  unshareFlags: number;
  /** Namespaces the child joins with setns, in order (user first, mount last). */
  joins: Array<{ type: NamespaceType; path: string }>;
  /** A pid namespace to create the child in (joined by the parent around clone). */
  pidJoin?: string;
  /** The container has its own user namespace (new or joined). */
  userns: boolean;
  /** A new user namespace whose maps the parent writes. */
  newUserns: boolean;
  has(type: NamespaceType): boolean;
  isNew(type: NamespaceType): boolean;
}

const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'cgroup', 'time', 'mount'];

/** Work out clone flags, joins and unshares for a list of namespaces. */
export function planNamespaces(namespaces: NamespaceSetup[]): NamespacePlan {
  const byType = new Map(namespaces.map((n) => [n.type, n]));
  const userJoined = byType.get('user')?.path !== undefined;
  let cloneFlags = 0, unshareFlags = 0;
  for (const n of namespaces) {
    if (n.path !== undefined) continue;
    // A new cgroup namespace is unshared by the child after it joined its cgroups (after the setup gate), so its root is
    // the container's cgroup, as runc does; created at clone time it would be the runtime's.
    if (n.type === 'cgroup') continue;
    const f = NAMESPACE_FLAGS[n.type];
    // With a joined user namespace, new namespaces must be created after the join so that they belong to it;
    // only the pid namespace has to come from clone (unshare(CLONE_NEWPID) affects children only).
    if (userJoined && n.type !== 'pid') unshareFlags |= f;
    else cloneFlags |= f;
  }
  const joins = JOIN_ORDER.flatMap((t) => {
    const p = byType.get(t)?.path;
    return p !== undefined ? [{ type: t, path: p }] : [];
  });
  return {
    cloneFlags,
    unshareFlags,
    joins,
    pidJoin: byType.get('pid')?.path,
    userns: byType.has('user'),
    newUserns: byType.has('user') && !userJoined,
    has: (t) => byType.has(t),
    isNew: (t) => byType.has(t) && byType.get(t)?.path === undefined,
  };
}

/** Render a uid_map/gid_map body. */
export function formatIdMap(maps: IdMapping[]): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** Write uid_map and gid_map of a child waiting in a new user namespace. Errors name the file. */
export function writeIdMaps(pid: number, uid: IdMapping[], gid: IdMapping[]): void {
  for (const [file, maps] of [['uid_map', uid], ['gid_map', gid]] as const) {
    const p = `/proc/${pid}/${file}`;
    try {
      fs.writeFileSync(p, formatIdMap(maps));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw Object.assign(new Error(`linux.${file === 'uid_map' ? 'uidMappings' : 'gidMappings'}: write ${p}: ${err.code} (${err.message})`), { code: err.code });
    }
  }
}
