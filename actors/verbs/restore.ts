/**
 * restore, as runc: CRIU brings a dumped process tree back (the same tree, pid 1 inside, a new host pid).
 * A checkpointed container comes back under its id with the config of its create (its state dir kept it);
 * under a new id the config is read from the bundle (-b), as runc does for every restore. Its cgroups are
 * made again (limits written) and given to CRIU as cgroup roots, its bind mounts and masked files are CRIU
 * external mounts keyed by their destination, a network namespace joined by path is handed over as an
 * inherited fd, and the stdio the tree had (pipes, sockets: runc's descriptors.json) becomes the caller's.
 * The state record is written with the new pid before the `restore` fact. A failure undoes the cgroups and
 * leaves the container checkpointed with its images (a new id: nothing of it stays), and is an `error` fact.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type ContainerSetup, loadBundle } from '../../config/index.js';
import { encodeStoredConfig } from '../../config/stored-config.js';
import { LifecycleError } from '../../errors/index.js';
import { type CgroupManager, NAMESPACE_PROC_NAMES, createCgroupManager, knownSyscall, processStartTime } from '../../kernel/index.js';
import { crashPoint } from '../crash-points.js';
import { type ContainerRecord, rfc3339Nano, storedConfigOf } from '../state-dir.js';
import { writeFileAtomic } from '../state-file.js';
import { recordFailure, withLog } from './checkpoint.js';
import type { VerbContext } from './context.js';
import { NETNS_KEY, type RestoreParams, type RestoreResult, bindMounts, cgroupRoots, commonOptions, criuLayer, inheritedStdio, joinedNetns, markCheckpointed, readCheckpointRecord, requireImages } from './criu-plan.js';

/** Restore a checkpointed container under its own id (the machine allowed it: it is `checkpointed`). */
export async function restoreContainer(ctx: VerbContext, id: string, p: RestoreParams = {}): Promise<RestoreResult> {
  const rec = ctx.state.require(id);
  if (p.bundle !== undefined && path.resolve(p.bundle) !== rec.bundle) {
    throw new LifecycleError('BadRequest', `restore ${id}: --bundle ${path.resolve(p.bundle)} is not the bundle it was created from (${rec.bundle}); its stored config is what it is restored with`, { field: 'bundle' });
  }
  const imagePath = path.resolve(p.imagePath ?? readCheckpointRecord(ctx.state.dir(id))?.imagePath ?? 'checkpoint');
  const { setup } = storedConfigOf(rec);
  try {
    return await restoreInto(ctx, id, rec, setup, imagePath, p, false);
  } catch (e) {
    await recordFailure(ctx, id, e, imagePath, 'restore');
    throw e;
  }
}

/** Restore images under a new id: the config from the bundle, a new state dir (as runc's restore always does). */
export async function restoreFresh(ctx: VerbContext, id: string, p: RestoreParams & { bundle: string }): Promise<RestoreResult> {
  const imagePath = path.resolve(p.imagePath ?? 'checkpoint');
  const bundle = await loadBundle(p.bundle, { knownSyscall });
  for (const w of bundle.warnings) ctx.warn(w);
  if (bundle.setup.process.terminal) throw new LifecycleError('Unsupported', `restore ${id}: process.terminal: cordon cannot restore a container with a terminal`, { field: 'process.terminal' });
  requireImages(imagePath);
  await criuLayer();
  const dir = ctx.state.claim(id);
  const rec: ContainerRecord = {
    version: 2,
    id,
    ociVersion: bundle.spec.ociVersion,
    pid: 0,
    pidStartTime: '0',
    bundle: bundle.bundle,
    rootfs: bundle.setup.rootfs,
    created: rfc3339Nano(),
    owner: '',
    annotations: bundle.annotations,
    namespaces: [],
    config: encodeStoredConfig({ setup: bundle.setup, hooks: bundle.hooks }),
  };
  try {
    return await restoreInto(ctx, id, rec, bundle.setup, imagePath, p, true);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    // creating → destroyed: nothing of it stays.
    await recordFailure(ctx, id, e, imagePath, 'restore');
    throw e;
  }
}

/** Cgroups, CRIU, the state record and the `restore` fact; on a failure before the fact, the cgroups go again. */
async function restoreInto(ctx: VerbContext, id: string, base: ContainerRecord, setup: ContainerSetup, imagePath: string, p: RestoreParams, fresh: boolean): Promise<RestoreResult> {
  const common = commonOptions(p, imagePath);
  requireImages(imagePath);
  const criu = await criuLayer();
  if (p.pidFile && fs.existsSync(path.resolve(p.pidFile)) && fs.statSync(path.resolve(p.pidFile)).isDirectory()) {
    throw new LifecycleError('BadRequest', `--pid-file ${p.pidFile} is a directory`, { field: 'pidFile' });
  }
  const inheritFds = inheritedStdio(imagePath, p.stdio);
  const netns = joinedNetns(setup);
  let netFd = -1;
  let cg: CgroupManager | undefined;
  const started = Date.now();
  try {
    if (netns) {
      netFd = fs.openSync(netns, 'r');
      inheritFds.push({ key: NETNS_KEY, fd: netFd });
    }
    cg = createCgroupManager({ id, cgroupsPath: setup.cgroupsPath });
    ctx.noteIntent(id, { cgroupPaths: cg.paths });
    cg.create();
    ctx.noteIntent(id, { cgroupCreated: cg.created ?? [] });
    if (setup.resources) cg.apply(setup.resources);
    crashPoint('restore:cgroups');
    const mounts = bindMounts(setup).map((m) => ({ key: m.destination, value: m.source }));
    if (setup.maskedPaths.length) mounts.push({ key: '/dev/null', value: '/dev/null' });
    const { pid } = await criu.criuRestore({ ...common, root: base.rootfs, logFile: 'restore.log', detached: true, externalMounts: mounts, cgroupRoots: cgroupRoots(cg.paths), inheritFds });
    const startTime = processStartTime(pid);
    if (startTime === undefined) throw new LifecycleError('SystemError', `restore ${id}: the restored init (pid ${pid}) is gone already`);
    ctx.noteIntent(id, { initPid: pid, initStartTime: String(startTime) });
    const rec: ContainerRecord = {
      ...base,
      pid,
      pidStartTime: String(startTime),
      namespaces: setup.namespaces.map((n) => ({ type: n.type, path: n.path ?? `/proc/${pid}/ns/${NAMESPACE_PROC_NAMES[n.type]}` })),
      cgroupPaths: { ...cg.paths },
      cgroupCreated: [...(cg.created ?? [])],
    };
    ctx.state.write(rec);
    if (p.pidFile) writeFileAtomic(path.resolve(p.pidFile), String(pid), 'pid file (--pid-file)', 0o644);
    crashPoint('restore:restored');
    const r: RestoreResult = { pid, imagePath, durationMs: Date.now() - started };
    await ctx.recorder.record(id, 'restore', { ...r, bundle: rec.bundle, ...(fresh ? { fresh: true } : {}) });
    markCheckpointed(ctx.state.dir(id), false);
    crashPoint('restore:recorded');
    return r;
  } catch (e) {
    if (cg) {
      // A restored tree whose fact could not be recorded goes again; the images stay for the next restore.
      try {
        cg.signalAll(9);
      } catch {
        // empty
      }
      await cg.destroy().catch((d: Error) => ctx.warn(`restore ${id}: its cgroups could not be removed: ${d.message}`));
    }
    if (p.pidFile) fs.rmSync(path.resolve(p.pidFile), { force: true });
    throw withLog(e, common.workDir ?? imagePath, 'restore.log');
  } finally {
    if (netFd >= 0) fs.closeSync(netFd);
  }
}
