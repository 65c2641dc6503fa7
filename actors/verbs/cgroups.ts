/**
 * A recorded container's cgroups, and the verbs that are only cgroup writes: pause and resume (the v1
 * freezer or cgroup.freeze) and update (new resource limits). A pause or resume whose fact cannot be
 * recorded is undone; an update is recorded first and a failure to apply it is recorded after it.
 */
import { LifecycleError } from '../../errors/index.js';
import { type CgroupManager, type CgroupResources, openCgroupManager } from '../../kernel/index.js';
import type { ContainerRecord } from '../state-dir.js';
import { crashPoint } from '../crash-points.js';
import type { VerbContext } from './context.js';

/** The state record of a container the log has (a container whose state dir was lost has none: SystemError). */
export function storedRecord(ctx: VerbContext, id: string): ContainerRecord {
  const rec = ctx.state.read(id);
  if (!rec) throw new LifecycleError('SystemError', `container ${id}: its state (${ctx.state.dir(id)}/state.json) is gone`);
  return rec;
}

/** The cgroup manager of a recorded container. */
export function cgroupOf(rec: ContainerRecord): CgroupManager {
  if (!rec.cgroupPaths || Object.keys(rec.cgroupPaths).length === 0) throw new LifecycleError('SystemError', `container ${rec.id} has no cgroups recorded`);
  return openCgroupManager(rec.cgroupPaths, { created: rec.cgroupCreated });
}

/** Freeze every process of a running container; thawed again if the `pause` fact cannot be recorded. */
export async function pauseContainer(ctx: VerbContext, id: string): Promise<void> {
  const cg = cgroupOf(storedRecord(ctx, id));
  await cg.freeze();
  try {
    crashPoint('pause:frozen');
    await ctx.recorder.record(id, 'pause', {});
  } catch (e) {
    await cg.thaw();
    throw e;
  }
}

/** Thaw a paused container; frozen again if the `resume` fact cannot be recorded. */
export async function resumeContainer(ctx: VerbContext, id: string): Promise<void> {
  const cg = cgroupOf(storedRecord(ctx, id));
  await cg.thaw();
  try {
    crashPoint('resume:thawed');
    await ctx.recorder.record(id, 'resume', {});
  } catch (e) {
    await cg.freeze();
    throw e;
  }
}

/** Parameters of update. */
export interface UpdateParams {
  resources: CgroupResources;
}

const jsonSafe = (r: CgroupResources): unknown => JSON.parse(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)));

/** Change the resources of a live container: the `update` fact first, then the writes; a failed write is an `error` fact after it. */
export async function updateContainer(ctx: VerbContext, id: string, p: UpdateParams): Promise<void> {
  const cg = cgroupOf(storedRecord(ctx, id));
  await ctx.recorder.record(id, 'update', { resources: jsonSafe(p.resources) });
  try {
    crashPoint('update:recorded');
    cg.apply(p.resources);
  } catch (e) {
    const err = e as Error & { errno?: number };
    try {
      await ctx.recorder.record(id, 'error', { step: 'update', message: err.message, ...(typeof err.errno === 'number' ? { errno: err.errno } : {}) });
    } catch (le) {
      err.message = `${err.message} (and the failure could not be recorded: ${(le as Error).message})`;
    }
    throw e;
  }
}
