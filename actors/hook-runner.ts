/**
 * Running a container's OCI hooks from the lifecycle: the hooks of one point in order, each run recorded
 * as a `hook` event, the first failure stopping the point and thrown to the caller (who applies the spec's
 * rule: abort before start, warn after).
 */
import { loadBundle } from '../config/index.js';
import type { OciHook, OciHooks } from '../config/oci-spec.js';
import { type HookPlace, runHook } from '../kernel/index.js';
import type { EventRecorder } from './event-recorder.js';
import type { ContainerRecord } from './state-dir.js';

/** The hooks of a recorded container (from its bundle; none when the bundle is gone). */
export async function hooksOf(rec: ContainerRecord): Promise<OciHooks> {
  try {
    return (await loadBundle(rec.bundle)).hooks;
  } catch {
    return {};
  }
}

/** Run the hooks of one point in order; each run is an event; the first failure stops and throws. */
export async function runHooks(recorder: EventRecorder | undefined, id: string, point: string, list: OciHook[] | undefined, state: string, place: HookPlace): Promise<void> {
  for (const [i, h] of (list ?? []).entries()) {
    const field = `hooks.${point}[${i}]`;
    try {
      await runHook(h, state, field, place);
      await recorder?.tryRecord(id, 'hook', { point, index: i, path: h.path, ok: true });
    } catch (e) {
      await recorder?.tryRecord(id, 'hook', { point, index: i, path: h.path, ok: false, message: (e as Error).message });
      throw e;
    }
  }
}
