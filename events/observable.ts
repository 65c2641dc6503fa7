/**
 * Events as rxjs Observables: stored events from a sequence (or time), then live ones, filtered by
 * container, action, time and sequence, with no gap and no duplicate at the seam between the two.
 */
import { createRequire } from 'node:module';
import type { Observable } from 'rxjs';
import type { CordonEvent, EventAction } from './schema.js';
import type { EventStore } from './store.js';

/** Which events to deliver. Within a key values OR; different keys AND (docker's filter rule). */
export interface EventFilter {
  containerId?: string | string[];
  action?: EventAction | EventAction[];
  /** Only events at or after this time / sequence. */
  since?: Date;
  sinceSeq?: number;
  /** Only events before or at this time; a stream with `until` in the past completes after the stored ones. */
  until?: Date;
  /** Deliver stored events only, then complete. */
  follow?: boolean;
}

// rxjs is loaded when the first Observable is made, not with this module: a supervisor that never streams events
// (the daemon) would otherwise carry ~7-13 MB of rxjs code. In Node, rxjs resolves to its CommonJS build either way.
const requireModule = createRequire(import.meta.url);
let ObservableClass: typeof Observable | undefined;
const observableClass = (): typeof Observable => (ObservableClass ??= (requireModule('rxjs') as typeof import('rxjs')).Observable);

const list = <T>(x: T | T[] | undefined): T[] | undefined => (x === undefined ? undefined : Array.isArray(x) ? x : [x]);

/** True when the event passes the filter (time and sequence bounds included). */
export function matches(e: CordonEvent, f: EventFilter): boolean {
  const ids = list(f.containerId), actions = list(f.action);
  if (ids && !ids.includes(e.containerId)) return false;
  if (actions && !actions.includes(e.action)) return false;
  if (f.sinceSeq !== undefined && e.seq < f.sinceSeq) return false;
  const ms = e.timeNano / 1e6;
  if (f.since && ms < f.since.getTime()) return false;
  if (f.until && ms > f.until.getTime()) return false;
  return true;
}

/**
 * An Observable of the store's events: the stored ones from `sinceSeq` (or from `since`; none when neither
 * is given), then live ones unless `follow` is false or `until` is in the past.
 */
export function events$(store: EventStore, filter: EventFilter = {}): Observable<CordonEvent> {
  const Obs = observableClass();
  return new Obs<CordonEvent>((sub) => {
    let last = 0;
    const startSeq = store.lastSeq();
    const buffered: CordonEvent[] = [];
    let replaying = true;
    const deliver = (e: CordonEvent) => {
      if (e.seq <= last) return; // already delivered by the replay
      last = e.seq;
      if (matches(e, filter)) sub.next(e);
    };
    const live = filter.follow !== false && !(filter.until && filter.until.getTime() < Date.now());
    const unsubscribe = live
      ? store.subscribe((e) => {
          if (replaying) buffered.push(e);
          else deliver(e);
        })
      : () => {};
    const wantsHistory = filter.sinceSeq !== undefined || filter.since !== undefined || !live;
    (wantsHistory ? store.read(filter.sinceSeq ?? 1) : Promise.resolve([] as CordonEvent[]))
      .then((stored) => {
        if (!wantsHistory) last = startSeq;
        for (const e of stored) deliver(e);
        replaying = false;
        for (const e of buffered.splice(0)) deliver(e);
        if (!live) sub.complete();
      })
      .catch((err: unknown) => sub.error(err));
    return unsubscribe;
  });
}
