/**
 * The cgroup v2 manager: one directory in the unified hierarchy. create() makes it and enables the root's
 * controllers in cgroup.subtree_control of every ancestor from the hierarchy root down to its parent (as
 * runc's fs2 CreateCgroupPath: all at once, else one by one, ignoring refusals that later writes will name);
 * freeze writes cgroup.freeze and waits for "frozen 1" in cgroup.events; SIGKILL to all goes through
 * cgroup.kill when the kernel has it.
 */
import path from 'node:path';
import { parseFlatKeyed, readCgroupFile, readOptionalFile, readProcsRecursive, sleep, writeCgroupFile, writeCgroupFileAsync, hasFile } from '../files.js';
import { hugePageSizes, UNIFIED } from '../layout.js';
import { oomKillCountV2, watchOomV2 } from './oom.js';
import { mkdirTracked, removeCgroupDirs } from '../removal.js';
import { emptyStats } from '../stats.js';
import { applyV2 } from './apply.js';
import { statsV2 } from './stats.js';
import { type CgroupJoinTargets, type CgroupManager, type CgroupStats } from '../types.js';
import { CgroupError } from '../../../config/cgroup-error.js';
import { SIGNALS } from '../../process/signals.js';
import type { CgroupResources } from '../../../config/model.js';

/** How to build a {@link V2Manager}. */
export interface V2ManagerOptions {
  /** Absolute directory of the container's cgroup. */
  dir: string;
  /** Mount point of the unified hierarchy (needed by create(); not by a re-opened manager). */
  mountPoint?: string;
  /** Directories an earlier create() made (destroy removes those ancestors too). */
  created?: readonly string[];
  /**
   * The controllers this manager answers for in stats(), OOM and memory questions (default: all). On a
   * hybrid host the v1 hierarchies own the rest.
   */
  controllers?: readonly string[];
  /** Huge page sizes for hugetlb stats ("2MB"); default: the host's. */
  hugePageSizes?: readonly string[];
  /** How long freeze() waits for "frozen 1" (default 10 s, runc's 1000 × 10 ms). */
  freezeTimeoutMs?: number;
}


/** A container's cgroup in the unified hierarchy. */
export class V2Manager implements CgroupManager {
  readonly paths: Readonly<Record<string, string>>;
  private readonly dir: string;
  private readonly mountPoint?: string;
  private readonly createdDirs: string[];
  private readonly owned?: ReadonlySet<string>;
  private readonly pageSizes: readonly string[];
  private readonly freezeTimeoutMs: number;

  constructor(opts: V2ManagerOptions) {
    this.dir = opts.dir;
    this.paths = { [UNIFIED]: opts.dir };
    this.mountPoint = opts.mountPoint;
    this.createdDirs = [...(opts.created ?? [])];
    this.owned = opts.controllers ? new Set(opts.controllers) : undefined;
    this.pageSizes = opts.hugePageSizes ?? hugePageSizes();
    this.freezeTimeoutMs = opts.freezeTimeoutMs ?? 10_000;
  }

  /** Directories create() made, parents first. */
  get created(): readonly string[] {
    return [...this.createdDirs];
  }

  private owns(controller: string): boolean {
    return this.owned === undefined || this.owned.has(controller);
  }

  create(): void {
    const base = this.mountPoint;
    if (!base) throw new CgroupError(`cannot create the cgroup ${this.dir}: the unified hierarchy's mount point is unknown`, this.dir);
    for (const d of mkdirTracked(base, this.dir)) if (!this.createdDirs.includes(d)) this.createdDirs.push(d);
    const ctrls = (readOptionalFile(base, 'cgroup.controllers') ?? '').trim().split(/\s+/).filter(Boolean);
    if (ctrls.length === 0) return;
    const all = ctrls.map((c) => `+${c}`).join(' ');
    let cur = base;
    const segs = path.relative(base, this.dir).split(path.sep).filter(Boolean);
    for (let i = 0; i < segs.length; i++) {
      try {
        writeCgroupFile(cur, 'cgroup.subtree_control', all, 'cgroup.subtree_control');
      } catch {
        for (const c of ctrls) {
          try {
            writeCgroupFile(cur, 'cgroup.subtree_control', `+${c}`, 'cgroup.subtree_control');
          } catch {
            // A controller that cannot be enabled here is reported by the resource that needs it.
          }
        }
      }
      cur = path.join(cur, segs[i]);
    }
  }

  apply(resources: CgroupResources): void {
    applyV2(this.dir, resources);
  }

  join(pid: number): void {
    writeCgroupFile(this.dir, 'cgroup.procs', String(pid), 'join (unified)');
  }

  joinTargets(): CgroupJoinTargets {
    return { tasks: [], unified: this.dir };
  }

  joinAsync(pid: number): Promise<void> {
    return writeCgroupFileAsync(this.dir, 'cgroup.procs', String(pid), 'join (unified)');
  }

  /** Write cgroup.freeze and wait until cgroup.events says `frozen` is `want`. */
  private async setFrozen(want: '0' | '1'): Promise<void> {
    if (!hasFile(this.dir, 'cgroup.freeze')) {
      if (want === '0') return;
      throw new CgroupError(`freezer: not supported: ${path.join(this.dir, 'cgroup.freeze')} does not exist (kernel < 5.2)`, path.join(this.dir, 'cgroup.freeze'), 'freezer', 'ENOTSUP');
    }
    writeCgroupFile(this.dir, 'cgroup.freeze', want, 'freezer');
    const deadline = Date.now() + this.freezeTimeoutMs;
    for (;;) {
      const ev = parseFlatKeyed(readCgroupFile(this.dir, 'cgroup.events', 'freezer'));
      if (String(ev.frozen ?? '0') === want) return;
      if (Date.now() >= deadline) {
        throw new CgroupError(`freezer: timeout of ${this.freezeTimeoutMs} ms reached waiting for the cgroup to ${want === '1' ? 'freeze' : 'thaw'}`, path.join(this.dir, 'cgroup.events'), 'freezer', 'ETIMEDOUT');
      }
      await sleep(10);
    }
  }

  async freeze(): Promise<void> {
    try {
      await this.setFrozen('1');
    } catch (e) {
      // Do not leave a half-frozen cgroup behind.
      try {
        writeCgroupFile(this.dir, 'cgroup.freeze', '0', 'freezer');
      } catch {
        // The original error matters more.
      }
      throw e;
    }
  }

  async thaw(): Promise<void> {
    await this.setFrozen('0');
  }

  isFrozen(): boolean {
    return readOptionalFile(this.dir, 'cgroup.freeze')?.trim() === '1';
  }

  pids(): number[] {
    return readProcsRecursive(this.dir);
  }

  stats(): CgroupStats {
    const s = emptyStats();
    statsV2(
      this.dir,
      s,
      { cpu: this.owns('cpu'), memory: this.owns('memory'), pids: this.owns('pids'), io: this.owns('io'), hugetlb: this.owns('hugetlb') },
      this.pageSizes,
    );
    return s;
  }

  oomKillCount(): number {
    return oomKillCountV2(this.dir);
  }

  watchOom(onOom: () => void): () => void {
    return watchOomV2(this.dir, onOom);
  }

  /** SIGKILL through cgroup.kill (kernel 5.14+); anything else, or an older kernel, pid by pid. */
  signalAll(signal: number): void {
    if (signal === SIGNALS.KILL && hasFile(this.dir, 'cgroup.kill')) {
      writeCgroupFile(this.dir, 'cgroup.kill', '1', 'kill');
      return;
    }
    for (const pid of this.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  async destroy(): Promise<void> {
    await removeCgroupDirs([this.dir], this.createdDirs);
  }
}
