/**
 * The cgroup manager for any layout. Each resource goes to the hierarchy that has its controller: a v1
 * mount when there is one, else the unified hierarchy when it offers the controller (hugetlb on this
 * hybrid host), else a CgroupError — only when that resource is actually asked for. Freezing uses the v1
 * freezer when mounted, else cgroup.freeze. `createCgroupManager` resolves the paths for a new container;
 * `openCgroupManager` re-opens one from the paths recorded in its state (pause, ps, update, delete from a
 * later CLI process).
 */
import { resolveCgroupPaths } from './cgroups-path.js';
import { availableControllers } from './v2/apply.js';
import { hostLayout, hugePageSizes, UNIFIED, type CgroupLayout } from './layout.js';
import { emptyStats } from './stats.js';
import { statsV1 } from './v1/stats.js';
import { statsV2 } from './v2/stats.js';
import { V1Manager } from './v1/manager.js';
import { V2Manager } from './v2/manager.js';
import { type CgroupJoinTargets, type CgroupManager, type CgroupStats } from './types.js';
import { CgroupError } from '../../config/cgroup-error.js';
import type { CgroupResources } from '../../config/model.js';

/** What {@link createCgroupManager} needs. */
export interface CreateCgroupOptions {
  /** Container id (the cgroup's name when cgroupsPath is empty, as runc). */
  id: string;
  /** OCI linux.cgroupsPath: absolute, relative to this process's cgroups, or empty. */
  cgroupsPath?: string;
  /** The host layout (default: detected from /proc/self/mountinfo once per process). */
  layout?: CgroupLayout;
  /** Huge page sizes for hugetlb stats ("2MB"); default: the host's. */
  hugePageSizes?: readonly string[];
}

/** What {@link openCgroupManager} may be given besides the paths. */
export interface OpenCgroupOptions {
  /** The `created` list of the manager that made the cgroups (lets destroy remove created ancestors). */
  created?: readonly string[];
  /** Huge page sizes for hugetlb stats ("2MB"); default: the host's. */
  hugePageSizes?: readonly string[];
}

/** v2 controller names of the resource groups whose v1 controller has another name. */
const V2_NAME: Record<string, string> = { blkio: 'io' };

/** v1 and/or v2 parts of one container's cgroups, each resource routed to the hierarchy that has it. */
class LayoutManager implements CgroupManager {
  readonly paths: Readonly<Record<string, string>>;
  private readonly pageSizes: readonly string[];

  constructor(
    private readonly v1: V1Manager | undefined,
    private readonly v2: V2Manager | undefined,
    /** Controllers the unified hierarchy offers that no v1 hierarchy has. */
    private readonly v2Controllers: ReadonlySet<string>,
    pageSizes: readonly string[],
  ) {
    this.paths = { ...(v1?.paths ?? {}), ...(v2?.paths ?? {}) };
    this.pageSizes = pageSizes;
  }

  get created(): readonly string[] {
    return [...(this.v1?.created ?? []), ...(this.v2?.created ?? [])];
  }

  private onV1(controller: string): boolean {
    return this.v1 !== undefined && this.v1.paths[controller] !== undefined;
  }

  private onV2(controller: string): boolean {
    return this.v2 !== undefined && this.v2Controllers.has(V2_NAME[controller] ?? controller);
  }

  /** 'v1', 'v2', or a CgroupError saying the controller is not there. */
  private where(controller: string, resource: string): 'v1' | 'v2' {
    if (this.onV1(controller)) return 'v1';
    if (this.onV2(controller)) return 'v2';
    const v2 = V2_NAME[controller] ?? controller;
    const more = this.v2 ? ` (and the cgroup v2 hierarchy does not offer ${v2})` : '';
    throw new CgroupError(`${resource}: not supported: the ${controller} controller is not mounted${more}`, controller, resource, 'ENOTSUP');
  }

  create(): void {
    this.v1?.create();
    this.v2?.create();
  }

  apply(r: CgroupResources): void {
    const p1: CgroupResources = {};
    const p2: CgroupResources = {};
    const part = (side: 'v1' | 'v2') => (side === 'v1' ? p1 : p2);
    const m = r.memory;
    if (m && [m.limit, m.reservation, m.swap, m.swappiness, m.disableOOMKiller].some((v) => v !== undefined)) part(this.where('memory', 'memory')).memory = m;
    const c = r.cpu;
    if (c) {
      const { cpus, mems, ...cpu } = c;
      if (Object.values(cpu).some((v) => v !== undefined)) part(this.where('cpu', 'cpu')).cpu = { ...cpu };
      if (cpus !== undefined || mems !== undefined) {
        const side = part(this.where('cpuset', cpus !== undefined ? 'cpu.cpus' : 'cpu.mems'));
        side.cpu = { ...(side.cpu ?? {}), cpus, mems };
      }
    }
    if (r.pids) part(this.where('pids', 'pids.limit')).pids = r.pids;
    const b = r.blockIO;
    if (b && Object.values(b).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0))) part(this.where('blkio', 'blockIO')).blockIO = b;
    if (r.hugepageLimits?.length) part(this.where('hugetlb', 'hugepageLimits')).hugepageLimits = r.hugepageLimits;
    if (r.network?.classID !== undefined && r.network.classID !== 0) {
      if (!this.onV1('net_cls')) this.where('net_cls', 'network.classID');
      p1.network = { ...(p1.network ?? {}), classID: r.network.classID };
    }
    if (r.network?.priorities?.length) {
      if (!this.onV1('net_prio')) this.where('net_prio', 'network.priorities');
      p1.network = { ...(p1.network ?? {}), priorities: r.network.priorities };
    }
    if (r.devices !== undefined) {
      if (this.onV1('devices')) p1.devices = r.devices;
      else if (this.v2) p2.devices = r.devices;
      else this.where('devices', 'devices');
    }
    if (r.rdma && Object.keys(r.rdma).length > 0) part(this.where('rdma', 'rdma')).rdma = r.rdma;
    if (r.unified && Object.keys(r.unified).length > 0) p2.unified = this.checkUnified(r.unified);
    this.v1?.apply(p1);
    this.v2?.apply(p2);
  }

  /** `unified` needs the v2 hierarchy; on a hybrid host only for files of controllers that live there. */
  private checkUnified(u: Readonly<Record<string, string>>): Record<string, string> {
    if (!this.v2) throw new CgroupError('unified: invalid configuration: cannot use unified on cgroup v1', 'unified', 'unified', 'ENOTSUP');
    if (this.v1) {
      for (const k of Object.keys(u)) {
        const ctrl = k.split('.')[0];
        if (ctrl !== 'cgroup' && k.includes('.') && !this.v2Controllers.has(ctrl)) {
          const how = this.onV1(ctrl === 'io' ? 'blkio' : ctrl) ? 'it is mounted as a cgroup v1 controller' : 'the cgroup v2 hierarchy does not offer it';
          throw new CgroupError(`unified[${JSON.stringify(k)}]: cannot set ${JSON.stringify(k)}: the ${ctrl} controller is not on the cgroup v2 hierarchy (${how})`, k, `unified[${JSON.stringify(k)}]`, 'ENOTSUP');
        }
      }
    }
    return { ...u };
  }

  join(pid: number): void {
    this.v1?.join(pid);
    this.v2?.join(pid);
  }

  joinTargets(): CgroupJoinTargets {
    return { tasks: this.v1?.joinTargets().tasks ?? [], unified: this.v2?.joinTargets().unified };
  }

  async joinAsync(pid: number): Promise<void> {
    await this.v1?.joinAsync(pid);
    await this.v2?.joinAsync(pid);
  }

  private freezer(): V1Manager | V2Manager {
    if (this.v1 && this.onV1('freezer')) return this.v1;
    if (this.v2) return this.v2;
    throw new CgroupError('freezer: not supported: the freezer controller is not mounted', 'freezer', 'freezer', 'ENOTSUP');
  }

  freeze(): Promise<void> {
    return this.freezer().freeze();
  }

  thaw(): Promise<void> {
    return this.freezer().thaw();
  }

  isFrozen(): boolean {
    return this.onV1('freezer') || this.v2 ? this.freezer().isFrozen() : false;
  }

  pids(): number[] {
    if (this.v1) return this.v1.pids();
    return this.v2 ? this.v2.pids() : [];
  }

  stats(): CgroupStats {
    const s = emptyStats();
    if (this.v1) statsV1(this.v1.paths, s, this.pageSizes);
    if (this.v2) {
      const own = (c: string) => this.v2Controllers.has(c);
      // cpu.stat exists in every v2 cgroup (usage without the cpu controller): use it when v1 has no cpuacct.
      const scope = { cpu: own('cpu') || !this.onV1('cpuacct'), memory: own('memory'), pids: own('pids'), io: own('io'), hugetlb: own('hugetlb') };
      statsV2(this.v2.paths[UNIFIED], s, scope, this.pageSizes);
    }
    return s;
  }

  private memory(): V1Manager | V2Manager {
    return this.where('memory', 'memory') === 'v1' ? (this.v1 as V1Manager) : (this.v2 as V2Manager);
  }

  oomKillCount(): number {
    return this.memory().oomKillCount();
  }

  watchOom(onOom: () => void): () => void {
    return this.memory().watchOom(onOom);
  }

  signalAll(signal: number): void {
    // The v1 freezer path also thaws a paused container so a SIGKILL lands; otherwise cgroup.kill.
    if (this.v1 && (this.onV1('freezer') || !this.v2)) this.v1.signalAll(signal);
    else if (this.v2) this.v2.signalAll(signal);
  }

  async destroy(): Promise<void> {
    const errors: unknown[] = [];
    for (const m of [this.v1, this.v2]) {
      if (!m) continue;
      try {
        await m.destroy();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      const msg = errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
      throw new CgroupError(msg, errors[0] instanceof CgroupError ? errors[0].file : '');
    }
  }
}

/**
 * The manager of a new container's cgroups: paths resolved from `cgroupsPath` (absolute, relative to this
 * process's cgroups, or the container id when empty; the systemd "slice:prefix:name" form is refused) on
 * the host's layout. Nothing is created until create().
 */
export function createCgroupManager(opts: CreateCgroupOptions): CgroupManager {
  const layout = opts.layout ?? hostLayout();
  const paths = resolveCgroupPaths(layout, opts.id, opts.cgroupsPath);
  const pageSizes = opts.hugePageSizes ?? hugePageSizes();
  const v1Paths: Record<string, string> = {};
  const mountPoints: Record<string, string> = {};
  for (const [k, d] of Object.entries(paths)) {
    if (k === UNIFIED) continue;
    v1Paths[k] = d;
    mountPoints[k] = layout.v1ByController[k].mountPoint;
  }
  const v1 = Object.keys(v1Paths).length > 0 ? new V1Manager({ paths: v1Paths, mountPoints, hugePageSizes: pageSizes }) : undefined;
  const v1Ctrls = new Set(Object.keys(v1Paths).map((k) => (k === 'blkio' ? 'io' : k)));
  const v2Ctrls = new Set((layout.v2?.controllers ?? []).filter((c) => !v1Ctrls.has(c)));
  const v2 = layout.v2 && paths[UNIFIED] ? new V2Manager({ dir: paths[UNIFIED], mountPoint: layout.v2.mountPoint, controllers: [...v2Ctrls], hugePageSizes: pageSizes }) : undefined;
  return new LayoutManager(v1, v2, v2Ctrls, pageSizes);
}

/**
 * Re-open a container's cgroups from recorded paths (its manager's `paths`; runc's "" key is read as
 * "unified"). Controllers of the unified directory are read from its cgroup.controllers.
 */
export function openCgroupManager(paths: Readonly<Record<string, string>>, opts: OpenCgroupOptions = {}): CgroupManager {
  const pageSizes = opts.hugePageSizes ?? hugePageSizes();
  const v1Paths: Record<string, string> = {};
  let unified: string | undefined;
  for (const [k, d] of Object.entries(paths)) {
    if (k === UNIFIED || k === '') unified = d;
    else v1Paths[k] = d;
  }
  const created = opts.created ?? [];
  const under = (root: string) => created.filter((c) => c === root || root.startsWith(`${c}/`));
  const v1Created = Object.values(v1Paths).flatMap(under);
  const v1 = Object.keys(v1Paths).length > 0 ? new V1Manager({ paths: v1Paths, created: [...new Set(v1Created)], hugePageSizes: pageSizes }) : undefined;
  const v1Ctrls = new Set(Object.keys(v1Paths).map((k) => (k === 'blkio' ? 'io' : k)));
  const v2Ctrls = new Set(unified ? [...availableControllers(unified)].filter((c) => !v1Ctrls.has(c)) : []);
  const v2 = unified ? new V2Manager({ dir: unified, created: under(unified), controllers: [...v2Ctrls], hugePageSizes: pageSizes }) : undefined;
  if (!v1 && !v2) throw new CgroupError('no cgroup paths recorded', '');
  return new LayoutManager(v1, v2, v2Ctrls, pageSizes);
}
