/**
 * A container's state directory under the runtime root (runc's layout: ROOT/ID/state.json plus the exec
 * fifo while it is created). The OCI status is derived from it and from /proc, never stored, so any
 * cordon process sees the same truth.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type StoredConfig, decodeStoredConfig } from '../config/stored-config.js';
import { LifecycleError } from '../errors/index.js';
import { isSameProcess, openCgroupManager } from '../kernel/index.js';
import { StateCorruptError, parseProblem, recordProblem, writeFileAtomic } from './state-file.js';

function isFrozen(paths: Record<string, string>): boolean {
  try {
    return openCgroupManager(paths).isFrozen();
  } catch {
    return false;
  }
}

function errnoOf(e: unknown): { errno?: number } {
  const n = (e as { errno?: unknown }).errno;
  return typeof n === 'number' ? { errno: Math.abs(n) } : {};
}

/** OCI statuses, plus `paused` as runc reports it. */
export type OciStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

/** What cordon records about a container (state.json). */
export interface ContainerRecord {
  /** Schema version of this file (2: the config of create is kept in `config`). */
  version: 2;
  id: string;
  /** ociVersion of the container's config.json. */
  ociVersion: string;
  /** Host pid of the container's init. */
  pid: number;
  /** Its start time (clock ticks after boot, /proc/PID/stat field 22), so a reused pid is never mistaken for it. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  /** RFC 3339 creation time with nanoseconds. */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  /** Namespace files of the container (for exec and joins). */
  namespaces: Array<{ type: string; path?: string }>;
  /** Its cgroup directory per controller ("unified" for the v2 hierarchy). */
  cgroupPaths?: Record<string, string>;
  /** Directories its create made (ancestors included), so delete removes exactly those. */
  cgroupCreated?: string[];
  /** The validated config of create (config/stored-config.ts encoding): what every later verb uses. */
  config: unknown;
}

/** The OCI state JSON (`cordon state`), field for field as runc prints it. */
export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: OciStatus;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** The runtime-spec version cordon implements (printed as `ociVersion` by `state`, as runc prints its own). */
export const OCI_VERSION = '1.2.0';

/** A container id as runc accepts it. */
export const CONTAINER_ID = /^[\w+\-.]+$/;

/** The directory of the containers' lock files under the root (actors/container-lock.ts): never a container id. */
export const LOCK_DIR = '.locks';

/** The config a container was created with, from its record. */
export function storedConfigOf(rec: ContainerRecord): StoredConfig {
  if (rec.version !== 2) throw new LifecycleError('SystemError', `container ${rec.id}: its state (version ${String(rec.version)}) was written by an older cordon and does not keep its config; delete and create it again`);
  return decodeStoredConfig(rec.config);
}

/** The state directories under one root (default /run/cordon). */
export class StateRoot {
  readonly root: string;
  /** state.json files read, with what identified them on disk (records are not changed by their readers). */
  private readonly records = new Map<string, { ino: number; size: number; mtimeMs: number; rec: ContainerRecord }>();

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Directory of container `id` (validated). */
  dir(id: string): string {
    if (!CONTAINER_ID.test(id) || id === '.' || id === '..' || id === LOCK_DIR) throw new LifecycleError('InvalidIdFormat', `invalid container id format: ${JSON.stringify(id)}`);
    return path.join(this.root, id);
  }

  /** Path of the exec fifo of a created container. */
  fifo(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** Create the state dir; fails if the id is taken. */
  claim(id: string): string {
    const d = this.dir(id);
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      fs.mkdirSync(d, { mode: 0o711 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new LifecycleError('IdInUse', `container with id exists: ${id}`);
      throw e;
    }
    return d;
  }

  /** Path of container `id`'s state.json. */
  file(id: string): string {
    return path.join(this.dir(id), 'state.json');
  }

  /**
   * Write state.json atomically; a disk that refuses it (ENOSPC, EIO, ...) is a SystemError naming the file and
   * errno, and leaves no half-written file.
   */
  write(rec: ContainerRecord): void {
    writeFileAtomic(this.file(rec.id), JSON.stringify(rec) + '\n', `container ${rec.id}`);
  }

  /**
   * Read state.json; undefined when there is none (no such container, or a create that has not written it).
   * A file that is there but unusable (empty, truncated, not JSON, a field missing or of the wrong type) is a
   * {@link StateCorruptError} naming the file and what is wrong.
   */
  read(id: string): ContainerRecord | undefined {
    const file = this.file(id);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(file, { throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    if (!st) {
      this.records.delete(id);
      return undefined;
    }
    // A record this object read or wrote, unchanged on disk since (same inode, size and mtime), is not parsed again.
    const cached = this.records.get(id);
    if (cached && cached.ino === st.ino && cached.size === st.size && cached.mtimeMs === st.mtimeMs) return cached.rec;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw new LifecycleError('SystemError', `read the state of container ${id}: ${(e as Error).message}`, { cause: e, ...errnoOf(e) });
    }
    const { value, problem } = parseProblem(text);
    const wrong = problem ?? recordProblem(value, id);
    if (wrong !== undefined) {
      this.records.delete(id);
      throw new StateCorruptError(id, file, wrong);
    }
    const rec = value as ContainerRecord;
    this.records.set(id, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, rec });
    return rec;
  }

  /** Read state.json, which must exist (ContainerNotExists otherwise). */
  require(id: string): ContainerRecord {
    const rec = this.read(id);
    if (!rec) throw new LifecycleError('ContainerNotExists', `container does not exist: ${id}`);
    return rec;
  }

  /** True when a state dir exists for id (even without state.json: a create in progress or a crash). */
  exists(id: string): boolean {
    return fs.existsSync(this.dir(id));
  }

  /** Ids with a state dir. */
  list(): string[] {
    try {
      return fs.readdirSync(this.root, { withFileTypes: true }).filter((e) => e.isDirectory() && CONTAINER_ID.test(e.name) && e.name !== LOCK_DIR).map((e) => e.name).sort();
    } catch {
      return [];
    }
  }

  /** Remove the state dir and everything in it. */
  remove(id: string): void {
    this.records.delete(id);
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Derived status: stopped when the init is gone, created while the exec fifo exists, paused while frozen, else running. */
  status(rec: ContainerRecord): OciStatus {
    if (!isSameProcess(rec.pid, BigInt(rec.pidStartTime))) return 'stopped';
    if (fs.existsSync(this.fifo(rec.id))) return 'created';
    if (rec.cgroupPaths && isFrozen(rec.cgroupPaths)) return 'paused';
    return 'running';
  }

  /** The OCI state of a record. */
  ociState(rec: ContainerRecord): OciState {
    const status = this.status(rec);
    const s: OciState = {
      ociVersion: OCI_VERSION,
      id: rec.id,
      pid: status === 'stopped' ? 0 : rec.pid,
      status,
      bundle: rec.bundle,
      rootfs: rec.rootfs,
      created: rec.created,
      owner: rec.owner,
    };
    if (Object.keys(rec.annotations).length) s.annotations = rec.annotations;
    return s;
  }
}

/** RFC 3339 time with nanosecond digits, as Go prints time.Time. */
export function rfc3339Nano(d = new Date(), hr = process.hrtime.bigint()): string {
  const subMs = String(hr % 1_000_000n).padStart(6, '0');
  return d.toISOString().replace(/\.(\d{3})Z$/, (_m, ms: string) => `.${ms}${subMs}Z`);
}
