/**
 * The cgroup v1 manager: one directory per mounted controller (combined mounts share one), created and
 * joined in runc's subsystem order, with cpuset.cpus/mems copied down from the parent at every level
 * (a new cpuset cgroup starts empty and nothing can join it otherwise).
 */
import path from 'node:path';
import { V1_SUBSYSTEMS } from '../cgroups-path.js';
import { readCgroupFile, readProcsRecursive, writeCgroupFile, writeCgroupFileAsync } from '../files.js';
import { hugePageSizes } from '../layout.js';
import { oomKillCountV1, watchOomV1 } from './oom.js';
import { mkdirTracked, removeCgroupDirs } from '../removal.js';
import { emptyStats } from '../stats.js';
import { applyV1, requireV1, type V1Dirs } from './apply.js';
import { freezeV1, freezeV1Sync, isFrozenV1, thawV1, thawV1Sync } from './freezer.js';
import { statsV1 } from './stats.js';
import { type CgroupJoinTargets, type CgroupManager, type CgroupStats } from '../types.js';
import { CgroupError } from '../../../config/cgroup-error.js';
import { SIGNALS } from '../../process/signals.js';
import type { CgroupResources } from '../../../config/model.js';

/** How to build a {@link V1Manager}. */
export interface V1ManagerOptions {
  /** Controller (or "name=systemd") → absolute directory of the container's cgroup. */
  paths: Readonly<Record<string, string>>;
  /** Controller → mount point of its hierarchy (needed by create(); not by a re-opened manager). */
  mountPoints?: Readonly<Record<string, string>>;
  /** Directories an earlier create() made (destroy removes those ancestors too). */
  created?: readonly string[];
  /** Huge page sizes for hugetlb stats ("2MB"); default: the host's. */
  hugePageSizes?: readonly string[];
}


/** The order in which directories are created and joined: runc's subsystems, then anything else. */
function ordered(paths: Readonly<Record<string, string>>): string[] {
  const keys = Object.keys(paths);
  return [...V1_SUBSYSTEMS.filter((k) => keys.includes(k)), ...keys.filter((k) => !V1_SUBSYSTEMS.includes(k))];
}

/** A container's cgroups on v1 hierarchies. */
export class V1Manager implements CgroupManager {
  readonly paths: Readonly<Record<string, string>>;
  private readonly mountPoints: Readonly<Record<string, string>>;
  private readonly createdDirs: string[];
  private readonly pageSizes: readonly string[];

  constructor(opts: V1ManagerOptions) {
    this.paths = { ...opts.paths };
    this.mountPoints = { ...(opts.mountPoints ?? {}) };
    this.createdDirs = [...(opts.created ?? [])];
    this.pageSizes = opts.hugePageSizes ?? hugePageSizes();
  }

  /** Directories create() made, parents first (record them to let a later process remove them too). */
  get created(): readonly string[] {
    return [...this.createdDirs];
  }

  /** Each distinct directory once, in runc's order. */
  private dirs(): string[] {
    return [...new Set(ordered(this.paths).map((k) => this.paths[k]))];
  }

  create(): void {
    for (const key of ordered(this.paths)) {
      const dir = this.paths[key];
      const base = this.mountPoints[key];
      if (!base) throw new CgroupError(`cannot create the ${key} cgroup ${dir}: its hierarchy's mount point is unknown`, dir, key);
      const made = mkdirTracked(base, dir);
      for (const d of made) if (!this.createdDirs.includes(d)) this.createdDirs.push(d);
      if (key === 'cpuset') copyCpusetDown(base, dir);
    }
  }

  apply(resources: CgroupResources): void {
    if (resources.unified !== undefined && Object.keys(resources.unified).length > 0) {
      throw new CgroupError('unified: invalid configuration: cannot use unified on cgroup v1', 'unified', 'unified', 'ENOTSUP');
    }
    applyV1(this.paths as V1Dirs, resources);
  }

  join(pid: number): void {
    for (const [key, dir] of this.joinOrder()) writeCgroupFile(dir, 'cgroup.procs', String(pid), `join (${key})`);
  }

  async joinAsync(pid: number): Promise<void> {
    for (const [key, dir] of this.joinOrder()) await writeCgroupFileAsync(dir, 'cgroup.procs', String(pid), `join (${key})`);
  }

  joinTargets(): CgroupJoinTargets {
    return { tasks: this.joinOrder().map(([name, dir]) => ({ name, path: path.join(dir, 'tasks') })) };
  }

  /** Each distinct directory once, with the first controller that names it, in runc's order. */
  private joinOrder(): Array<[string, string]> {
    const seen = new Set<string>();
    const out: Array<[string, string]> = [];
    for (const key of ordered(this.paths)) {
      const dir = this.paths[key];
      if (seen.has(dir)) continue;
      seen.add(dir);
      out.push([key, dir]);
    }
    return out;
  }

  private freezerDir(): string {
    return requireV1(this.paths, 'freezer', 'freezer');
  }

  async freeze(): Promise<void> {
    await freezeV1(this.freezerDir());
  }

  async thaw(): Promise<void> {
    await thawV1(this.freezerDir());
  }

  isFrozen(): boolean {
    return this.paths.freezer ? isFrozenV1(this.paths.freezer) : false;
  }

  /** The hierarchy pids are read from: devices (as runc), else freezer, pids, memory, any. */
  private primary(): string {
    for (const k of ['devices', 'freezer', 'pids', 'memory', 'cpu']) if (this.paths[k]) return this.paths[k];
    const first = Object.values(this.paths)[0];
    if (!first) throw new CgroupError('no cgroup directory', '');
    return first;
  }

  pids(): number[] {
    return [...new Set(readProcsRecursive(this.primary()))];
  }

  stats(): CgroupStats {
    const s = emptyStats();
    statsV1(this.paths, s, this.pageSizes);
    return s;
  }

  oomKillCount(): number {
    return oomKillCountV1(requireV1(this.paths, 'memory', 'memory'));
  }

  watchOom(onOom: () => void): () => void {
    return watchOomV1(requireV1(this.paths, 'memory', 'memory'), onOom);
  }

  /**
   * Signal every process: freeze first (if the freezer is mounted) so none forks away, signal each pid,
   * then thaw (runc's signalAllProcesses), except that a paused container stays paused for signals other
   * than SIGKILL.
   */
  signalAll(signal: number): void {
    const fz = this.paths.freezer;
    const wasFrozen = fz ? isFrozenV1(fz) : false;
    if (fz && !wasFrozen) {
      try {
        freezeV1Sync(fz);
      } catch {
        // Signal anyway, as runc does when the freeze fails.
      }
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
    if (fz && (!wasFrozen || signal === SIGNALS.KILL)) thawV1Sync(fz);
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs(this.dirs(), this.createdDirs);
  }
}

/**
 * cpuset.cpus and cpuset.mems of every level from the hierarchy root down to `dir` that has them empty get
 * the parent's values (runc's cpusetEnsureParent / cpusetCopyIfNeeded).
 */
function copyCpusetDown(base: string, dir: string): void {
  const rel = path.relative(base, dir).split(path.sep).filter(Boolean);
  let parent = base;
  for (const seg of rel) {
    const cur = path.join(parent, seg);
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (readCgroupFile(cur, f, 'cpuset').trim() === '') writeCgroupFile(cur, f, readCgroupFile(parent, f, 'cpuset').trim(), 'cpuset');
    }
    parent = cur;
  }
}
