/**
 * start: the startContainer hooks in the container's namespaces, then one byte through the exec fifo lets
 * the parked init execve; the `start` fact is recorded between opening the fifo (which proves the init still
 * waits) and writing the byte, so no watcher can record the init's exit before its start, and a start that
 * cannot be recorded never happens. poststart hook failures are warnings (the spec's rule).
 */
import fs from 'node:fs';
import type { NamespaceType } from '../../config/index.js';
import { LifecycleError } from '../../errors/index.js';
import { O } from '../../kernel/index.js';
import { runHooks } from '../hook-runner.js';
import { storedConfigOf } from '../state-dir.js';
import { crashPoint } from '../crash-points.js';
import type { VerbContext } from './context.js';
import { destroyContainer } from './destroy.js';

/** Start a created container (the machine allowed it: it is `created`). */
export async function startContainer(ctx: VerbContext, id: string): Promise<void> {
  const rec = ctx.state.require(id);
  const { hooks } = storedConfigOf(rec);
  const state = (status: string) => JSON.stringify({ ...ctx.state.ociState(rec), status });
  if (hooks.startContainer?.length) {
    try {
      // In the container's namespaces, before its process runs (the init is parked at its exec fifo).
      await runHooks(ctx.recorder, id, 'startContainer', hooks.startContainer, state('created'), { kind: 'container', pid: rec.pid, namespaces: rec.namespaces.map((n) => n.type as NamespaceType) });
    } catch (e) {
      // The spec: a failed startContainer hook stops the container and goes on with delete.
      await destroyContainer(ctx, id, { force: true }).catch((d: Error) => ctx.warn(`delete after the failed hook: ${d.message}`));
      throw e;
    }
  }
  const fifo = openFifo(ctx, id);
  try {
    await ctx.recorder.record(id, 'start', { pid: rec.pid });
  } catch (e) {
    fs.closeSync(fifo);
    throw e;
  }
  try {
    crashPoint('start:recorded');
    fs.writeSync(fifo, Buffer.from([0]));
  } finally {
    fs.closeSync(fifo);
  }
  crashPoint('start:released');
  fs.rmSync(ctx.state.fifo(id), { force: true });
  // poststart failures are warnings (the spec's rule): the container runs on.
  await runHooks(ctx.recorder, id, 'poststart', hooks.poststart, state('running'), { kind: 'runtime' }).catch((e: Error) => ctx.warn(e.message));
}

/** Open a created container's exec fifo for writing; fails when its init no longer waits there. */
function openFifo(ctx: VerbContext, id: string): number {
  try {
    return fs.openSync(ctx.state.fifo(id), O.WRONLY | O.NONBLOCK | O.CLOEXEC);
  } catch (e) {
    // ENXIO: nobody holds the fifo for reading, i.e. the init is gone; ENOENT: it was started already.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENXIO' || code === 'ENOENT') throw new LifecycleError('ContainerNotRunning', `cannot start container ${id}: its init no longer waits at its exec fifo (${code})`, { cause: e });
    throw e;
  }
}
