/**
 * Running a container's OCI hooks from the lifecycle: the hooks of one point in order, each run recorded
 * as a `hook` event, the first failure stopping the point and thrown to the caller (who applies the spec's
 * rule: abort before start, warn after). A hook fact that cannot be recorded fails the point too.
 */
import type { OciHook } from '../config/index.js';
import { type HookPlace, runHook } from '../kernel/index.js';
import type { EventRecorder } from './event-recorder.js';

/** Run the hooks of one point in order; each run is an event; the first failure stops and throws. */
export async function runHooks(recorder: EventRecorder, id: string, point: string, list: OciHook[] | undefined, state: string, place: HookPlace): Promise<void> {
  for (const [i, h] of (list ?? []).entries()) {
    const field = `hooks.${point}[${i}]`;
    try {
      await runHook(h, state, field, place);
    } catch (e) {
      await recorder.record(id, 'hook', { point, index: i, path: h.path, ok: false, message: (e as Error).message });
      throw e;
    }
    await recorder.record(id, 'hook', { point, index: i, path: h.path, ok: true });
  }
}
