/**
 * What each command verb does on the host: a checked request (events/command-api.ts) sent to the
 * container's machine through the Supervisor's host, like every other door's verbs, and answered with the
 * verb's reply. Errors are LifecycleErrors (RequestError, ConfigError, the machine's refusals); the service
 * puts them on the wire.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, Issues, convertResources, parseConfigJson, readConfigJson, specToSetup } from '../config/index.js';
import { LifecycleError } from '../errors/index.js';
import { type CommandReplies, type CommandRequests, type CommandVerb, RequestError } from '../events/command-api.js';
import { type CgroupResources, parseSignal } from '../kernel/index.js';
import type { Authorizer } from './command-authorize.js';
import type { Caller } from './command-policy.js';
import { containerStats, ociStateOf, ociStateOrCheckpointed } from './queries.js';
import { storedConfigOf } from './state-dir.js';
import { jsonWithBigints, runcStats } from './runc-events.js';
import type { Supervisor } from './supervisor.js';
import { notRunning } from '../machines/commands.js';

/** What the handlers need besides the supervisor. */
export interface HandlerContext {
  host: string;
  /** Fds for the stdio of containers and execs created by commands. */
  stdio: readonly number[];
  /** Where bundles made from `create { config }` requests live (one directory per container). */
  bundleRoot: string;
  /** The command policy's checks. */
  authz: Authorizer;
  /** Who sent this request, with its grant. */
  caller: Caller;
}

type Handler<V extends CommandVerb> = (sup: Supervisor, req: CommandRequests[V], ctx: HandlerContext) => Promise<CommandReplies[V]>;

/** The container must exist (ContainerNotExists otherwise); returns its machine state. */
function existing(sup: Supervisor, id: string): string {
  return sup.stateOf(id);
}

/** Bytes from an integer or "512m" (binary multiples, as runc's flags). */
function bytes(field: string, v: number | string): bigint {
  if (typeof v === 'number') return BigInt(v);
  const m = /^(-?\d+)([kmgtp]?)b?$/i.exec(v.trim());
  if (!m) throw new RequestError('BadRequest', `update: ${field}: invalid size ${JSON.stringify(v)}`, field);
  const shift = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n, p: 50n }[m[2].toLowerCase() as ''];
  return BigInt(m[1]) << shift;
}

/** The CgroupResources of an update request (OCI object first, runc's flat flags on top). */
export function updateResources(req: CommandRequests['update']): CgroupResources {
  let r: CgroupResources = {};
  if (req.resources) {
    const issues = new Issues();
    r = convertResources(issues, req.resources, 'resources') ?? {};
    issues.throwIfAny();
  }
  const memory: NonNullable<CgroupResources['memory']> = { ...r.memory };
  if (req.memory !== undefined) memory.limit = bytes('memory', req.memory);
  if (req.memoryReservation !== undefined) memory.reservation = bytes('memoryReservation', req.memoryReservation);
  if (req.memorySwap !== undefined) memory.swap = bytes('memorySwap', req.memorySwap);
  if (Object.keys(memory).length) r.memory = memory;
  const cpu: NonNullable<CgroupResources['cpu']> = { ...r.cpu };
  if (req.cpuShares !== undefined) cpu.shares = BigInt(req.cpuShares);
  if (req.cpuQuota !== undefined) cpu.quota = BigInt(req.cpuQuota);
  if (req.cpuPeriod !== undefined) cpu.period = BigInt(req.cpuPeriod);
  if (req.cpusetCpus !== undefined) cpu.cpus = req.cpusetCpus;
  if (req.cpusetMems !== undefined) cpu.mems = req.cpusetMems;
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (req.pidsLimit !== undefined) r.pids = { limit: BigInt(req.pidsLimit) };
  if (req.blkioWeight !== undefined) r.blockIO = { ...r.blockIO, weight: req.blkioWeight };
  if (Object.keys(r).length === 0) throw new RequestError('BadRequest', 'update: resources: nothing to change (give "resources" or a flag such as "memory")', 'resources');
  return r;
}

/** What a create runs: the bundle directory and the parsed, checked config the create uses (config.json is not read again). */
interface CreatePlan {
  bundle: string;
  spec: Record<string, unknown>;
  /** For `create { config }`: the bundle directory to write (config.json with `spec`). */
  write?: string;
}

/**
 * Read (once), validate and check against the command policy the config a create would run, before anything
 * is written: `create { bundle }` reads the bundle's config.json (the bundle directory resolved and under a
 * bundle root); `create { config, rootfs }` takes the object with root.path set to the absolute rootfs. The
 * plan's spec has the host paths that were checked pinned in it.
 */
async function planCreate(sup: Supervisor, req: CommandRequests['create'], ctx: HandlerContext): Promise<CreatePlan> {
  sup.containers.state.dir(req.id); // InvalidIdFormat before any path is built from the id
  if (req.bundle !== undefined) {
    const bundle = ctx.authz.bundleDir(ctx.caller, req.bundle);
    const raw = parseConfigJson(await readConfigJson(bundle));
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError([{ path: 'config.json', message: 'expected a JSON object at the top level' }]);
    const v = specToSetup(raw, bundle, { noPivotRoot: req.noPivot });
    return { bundle, spec: ctx.authz.createConfig(ctx.caller, raw as Record<string, unknown>, v, 'root.path') };
  }
  if (sup.ids().includes(req.id) || sup.containers.state.exists(req.id)) throw new LifecycleError('IdInUse', `container with id exists: ${req.id}`);
  const config = req.config as Record<string, unknown>;
  const root = (typeof config.root === 'object' && config.root !== null ? config.root : {}) as Record<string, unknown>;
  const rootfs = req.rootfs ?? root.path;
  if (typeof rootfs !== 'string' || !path.isAbsolute(rootfs)) {
    throw new RequestError('BadRequest', 'create: rootfs: an absolute rootfs path on the host is required (as "rootfs", or config.root.path)', 'rootfs');
  }
  const rootField = req.rootfs !== undefined ? 'rootfs' : 'root.path';
  ctx.authz.rootfsPath(ctx.caller, rootField, rootfs);
  const raw = { ...config, root: { ...root, path: rootfs } };
  const dir = path.join(ctx.bundleRoot, req.id);
  const v = specToSetup(raw, dir, { noPivotRoot: req.noPivot }); // ConfigError naming every bad field, before anything is written
  const spec = ctx.authz.createConfig(ctx.caller, raw, v, rootField);
  if (fs.existsSync(dir)) throw new LifecycleError('IdInUse', `a bundle for ${req.id} exists at ${dir}`);
  return { bundle: dir, spec, write: dir };
}

/** The stored setup of container `id`, or undefined when it has none (the verb then fails on its own). */
function storedSetup(sup: Supervisor, id: string) {
  try {
    const rec = sup.containers.state.read(id);
    return rec ? storedConfigOf(rec).setup : undefined;
  } catch {
    return undefined;
  }
}

/** An exec's stdout and stderr captured in two unlinked temp files (read back after the exit, up to 256 KiB each: a reply must fit NATS's max_payload, 1 MiB by default). */
class OutputCapture {
  static readonly LIMIT = 256 << 10;
  readonly out: number;
  readonly err: number;

  constructor() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-exec-'));
    try {
      this.out = fs.openSync(path.join(dir, 'out'), 'w+', 0o600);
      this.err = fs.openSync(path.join(dir, 'err'), 'w+', 0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  read(): { stdout: string; stderr: string; truncated: boolean } {
    const take = (fd: number) => {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, OutputCapture.LIMIT));
      fs.readSync(fd, buf, 0, buf.length, 0);
      return { text: buf.toString('utf8'), cut: size > OutputCapture.LIMIT };
    };
    const o = take(this.out);
    const e = take(this.err);
    return { stdout: o.text, stderr: e.text, truncated: o.cut || e.cut };
  }

  close(): void {
    fs.closeSync(this.out);
    fs.closeSync(this.err);
  }
}

const HANDLERS: { [V in CommandVerb]: Handler<V> } = {
  async create(sup, req, ctx) {
    const plan = await planCreate(sup, req, ctx);
    const made = plan.write;
    if (made) {
      fs.mkdirSync(made, { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(made, 'config.json'), JSON.stringify(plan.spec, null, 2));
    }
    try {
      await sup.create(req.id, { bundle: plan.bundle, spec: plan.spec, noPivot: req.noPivot, stdio: ctx.stdio });
    } catch (e) {
      if (made) fs.rmSync(made, { recursive: true, force: true });
      if (e instanceof LifecycleError && e.field === 'process.terminal') {
        throw new RequestError('Unsupported', 'create: process.terminal: a terminal needs a console socket, which a command over NATS cannot pass', 'process.terminal');
      }
      throw e;
    }
    return { id: req.id, pid: ociStateOf(sup.containers.state, req.id).pid, state: sup.stateOf(req.id) };
  },
  async start(sup, req) {
    await sup.start(req.id);
    return { id: req.id, state: sup.stateOf(req.id) };
  },
  async pause(sup, req) {
    await sup.pause(req.id);
    return { id: req.id, state: sup.stateOf(req.id) };
  },
  async resume(sup, req) {
    await sup.resume(req.id);
    return { id: req.id, state: sup.stateOf(req.id) };
  },
  async kill(sup, req) {
    const signal = req.signal === undefined ? 15 : typeof req.signal === 'number' ? req.signal : parseSignal(req.signal);
    if (signal === undefined) throw new RequestError('BadRequest', `kill: signal: unknown signal ${JSON.stringify(req.signal)}`, 'signal');
    await sup.kill(req.id, signal, { all: req.all });
    return { id: req.id, signal, state: sup.stateOf(req.id) };
  },
  async exec(sup, req, ctx) {
    ctx.authz.exec(ctx.caller, req, storedSetup(sup, req.id));
    const capture = req.output ? new OutputCapture() : undefined;
    try {
      const proc = await sup.containers.exec(req.id, {
        request: { args: req.args ?? [], env: req.env, cwd: req.cwd, user: req.user, additionalGids: req.additionalGids, caps: req.caps, noNewPrivileges: req.noNewPrivileges, process: req.process },
        io: { stdio: capture ? [ctx.stdio[0], capture.out, capture.err] : ctx.stdio },
      });
      // Detached: the supervisor stays its parent (it reaps it and records exec-exit); the reply does not wait.
      if (req.detach) return { id: req.id, execId: proc.execId, pid: proc.pid };
      const st = await proc.exited;
      return { id: req.id, execId: proc.execId, pid: proc.pid, exitCode: st.exitCode, signal: st.signal, ...capture?.read() };
    } finally {
      capture?.close();
    }
  },
  async checkpoint(sup, req, ctx) {
    if (req.imagePath !== undefined) ctx.authz.hostPath(ctx.caller, 'imagePath', req.imagePath);
    if (req.workPath !== undefined) ctx.authz.hostPath(ctx.caller, 'workPath', req.workPath);
    const r = await sup.containers.checkpoint(req.id, req);
    return { id: req.id, state: sup.stateOf(req.id), ...r };
  },
  async restore(sup, req, ctx) {
    ctx.authz.hostPath(ctx.caller, 'imagePath', req.imagePath);
    if (req.workPath !== undefined) ctx.authz.hostPath(ctx.caller, 'workPath', req.workPath);
    if (req.bundle !== undefined) ctx.authz.hostPath(ctx.caller, 'bundle', req.bundle);
    // The supervisor is the restored tree's parent (it reaps it and records its exit); its stdio goes nowhere.
    const r = await sup.containers.restore(req.id, { ...req, stdio: ctx.stdio });
    return { id: req.id, state: sup.stateOf(req.id), ...r };
  },
  async destroy(sup, req, ctx) {
    await sup.destroy(req.id, { force: req.force });
    fs.rmSync(path.join(ctx.bundleRoot, req.id), { recursive: true, force: true });
    return { id: req.id, destroyed: true };
  },
  async list(sup, _req, ctx) {
    const containers = sup.ids().map((id) => {
      let oci: { pid: number; bundle: string; created: string } = { pid: 0, bundle: '', created: '' };
      try {
        oci = ociStateOf(sup.containers.state, id);
      } catch {
        // no state dir (stopped and cleaned by another process): the machine state is still known
      }
      return { id, state: sup.stateOf(id), pid: oci.pid, bundle: oci.bundle, created: oci.created };
    });
    return { host: ctx.host, containers };
  },
  async state(sup, req, ctx) {
    const state = existing(sup, req.id);
    return { id: req.id, host: ctx.host, state, oci: ociStateOrCheckpointed(sup.containers.state, req.id) };
  },
  async stats(sup, req) {
    const st = existing(sup, req.id);
    if (st === 'stopped' || st === 'checkpointed') throw notRunning(req.id, st, 'get stats of');
    const s = containerStats(sup.containers.state, req.id);
    return { id: req.id, data: JSON.parse(jsonWithBigints(runcStats(s.cgroup, s.interfaces))) as Record<string, unknown> };
  },
  async update(sup, req, ctx) {
    const resources = updateResources(req);
    ctx.authz.update(ctx.caller, resources);
    await sup.containers.update(req.id, { resources });
    return { id: req.id, state: sup.stateOf(req.id) };
  },
};

/** Run one checked request. */
export function handleCommand<V extends CommandVerb>(verb: V, sup: Supervisor, req: CommandRequests[V], ctx: HandlerContext): Promise<CommandReplies[V]> {
  return (HANDLERS[verb] as Handler<V>)(sup, req, ctx);
}

