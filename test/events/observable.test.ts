/**
 * events$: filters (containerId, action, since/until, sinceSeq), stored-only streams that complete, live
 * streams, and the seam between stored and live events (no gap, no duplicate) when events arrive while
 * the stored read is in progress — from this process and from another one.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { firstValueFrom, toArray } from 'rxjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { JournalStore } from '../../events/journal.js';
import { type EventFilter, events$, matches } from '../../events/observable.js';
import { type CordonEvent, type EventAction, type NewEvent, newEvent } from '../../events/schema.js';
import type { EventStore } from '../../events/store.js';
import { openJournal } from '../../actors/event-recorder.js';import { mulberry32 } from '../fixtures/random.js';


const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-observable-'));
let n = 0;
const stores: JournalStore[] = [];
const openStore = () => {
  const s = openJournal(path.join(tmp, `events-${++n}.journal`));
  stores.push(s);
  return s;
};
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => {});
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const T0 = Date.parse('2024-05-01T12:00:00.000Z');
/** An event at T0 + `sec` seconds. */
const at = (containerId: string, action: EventAction, sec: number): NewEvent => ({
  v: 1,
  id: randomUUID(),
  time: new Date(T0 + sec * 1000).toISOString(),
  timeNano: (T0 + sec * 1000) * 1e6,
  host: 'node-a',
  type: 'container',
  action,
  containerId,
  attributes: {},
});

/** Eight stored events, one a second: seq 1..8. */
async function fixture(): Promise<JournalStore> {
  const s = openStore();
  const plan: Array<[string, EventAction]> = [
    ['web', 'create'],
    ['web', 'start'],
    ['db', 'create'],
    ['web', 'pause'],
    ['db', 'start'],
    ['web', 'resume'],
    ['db', 'exit'],
    ['cache', 'create'],
  ];
  for (const [i, [id, action]] of plan.entries()) await s.append([at(id, action, i)]);
  return s;
}

const seqs = (es: CordonEvent[]) => es.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** All events of a stream that must complete (with a timeout, so a stream that never completes fails). */
const stored = (store: EventStore, f: EventFilter) =>
  Promise.race([
    firstValueFrom(events$(store, f).pipe(toArray())),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('stream did not complete')), 3000).unref()),
  ]);

/** Subscribe and collect; `until(k)` resolves once k events arrived. */
function live(store: EventStore, f: EventFilter = {}) {
  const got: CordonEvent[] = [];
  let completed = false;
  let error: unknown;
  const waiters: Array<[number, () => void]> = [];
  const sub = events$(store, f).subscribe({
    next: (e) => {
      got.push(e);
      for (const [k, w] of waiters) if (got.length >= k) w();
    },
    complete: () => (completed = true),
    error: (e) => (error = e),
  });
  const until = (k: number, ms = 5000) =>
    got.length >= k
      ? Promise.resolve()
      : Promise.race([
          new Promise<void>((resolve) => waiters.push([k, resolve])),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`only ${got.length} of ${k} events: ${seqs(got)}`)), ms).unref()),
        ]);
  return { got, sub, until, done: () => completed, error: () => error };
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('filters on stored events (follow: false)', () => {
  it('no filter: every stored event, then complete', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false }))).toEqual(range(1, 8));
  });

  it('containerId: one, or a list (OR)', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false, containerId: 'web' }))).toEqual([1, 2, 4, 6]);
    expect(seqs(await stored(s, { follow: false, containerId: ['web', 'cache'] }))).toEqual([1, 2, 4, 6, 8]);
    expect(seqs(await stored(s, { follow: false, containerId: 'nobody' }))).toEqual([]);
  });

  it('action: one, or a list (OR)', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false, action: 'create' }))).toEqual([1, 3, 8]);
    expect(seqs(await stored(s, { follow: false, action: ['create', 'exit'] }))).toEqual([1, 3, 7, 8]);
  });

  it('different keys AND', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false, containerId: 'db', action: ['start', 'exit'] }))).toEqual([5, 7]);
    expect(seqs(await stored(s, { follow: false, containerId: ['web', 'db'], action: 'create' }))).toEqual([1, 3]);
    expect(seqs(await stored(s, { follow: false, containerId: 'cache', action: 'start' }))).toEqual([]);
    expect(seqs(await stored(s, { follow: false, containerId: 'web', sinceSeq: 3, until: new Date(T0 + 4000) }))).toEqual([4]);
  });

  it('since / until by time, both inclusive', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false, since: new Date(T0 + 2000), until: new Date(T0 + 5000) }))).toEqual([3, 4, 5, 6]);
    expect(seqs(await stored(s, { follow: false, since: new Date(T0 + 6500) }))).toEqual([8]);
    expect(seqs(await stored(s, { follow: false, until: new Date(T0 + 999) }))).toEqual([1]);
    expect(seqs(await stored(s, { follow: false, since: new Date(T0 + 5000), containerId: 'db' }))).toEqual([7]);
  });

  it('an `until` in the past completes after the stored events even without follow: false', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { until: new Date(T0 + 1000) }))).toEqual([1, 2]);
  });

  it('sinceSeq', async () => {
    const s = await fixture();
    expect(seqs(await stored(s, { follow: false, sinceSeq: 6 }))).toEqual([6, 7, 8]);
    expect(seqs(await stored(s, { follow: false, sinceSeq: 9 }))).toEqual([]);
    expect(seqs(await stored(s, { follow: false, sinceSeq: 2, containerId: 'db' }))).toEqual([3, 5, 7]);
  });

  it('an empty store completes at once', async () => {
    expect(await stored(openStore(), { follow: false })).toEqual([]);
  });

  it('matches() compares times with sub-millisecond precision', () => {
    const e = { ...at('web', 'start', 0), seq: 1, containerSeq: 1, timeNano: T0 * 1e6 + 500_000 }; // T0 + 0.5 ms
    expect(matches(e, { since: new Date(T0) })).toBe(true);
    expect(matches(e, { since: new Date(T0 + 1) })).toBe(false);
    expect(matches(e, { until: new Date(T0) })).toBe(false);
    expect(matches(e, { until: new Date(T0 + 1) })).toBe(true);
    expect(matches(e, { sinceSeq: 1 })).toBe(true);
    expect(matches(e, { sinceSeq: 2 })).toBe(false);
  });

  it('a failing read errors the stream', async () => {
    const s = await fixture();
    const broken: EventStore = { ...wrap(s), read: async () => Promise.reject(new Error('disk on fire')) };
    await expect(firstValueFrom(events$(broken, { follow: false }).pipe(toArray()))).rejects.toThrow('disk on fire');
  });
});

/** An EventStore over `inner` whose reads run hooks before and after the real read. */
function wrap(inner: JournalStore, hooks: { before?: () => Promise<unknown>; after?: () => Promise<unknown> } = {}): EventStore {
  return {
    append: (e, o) => inner.append(e, o),
    read: async (from) => {
      await hooks.before?.();
      const r = await inner.read(from);
      await hooks.after?.();
      return r;
    },
    subscribe: (l) => inner.subscribe(l),
    lastSeq: () => inner.lastSeq(),
    containerSeq: (id) => inner.containerSeq(id),
    close: () => inner.close(),
  };
}

describe('follow', () => {
  it('without since/sinceSeq: live events only, the stream stays open', async () => {
    const s = await fixture();
    const l = live(s);
    await s.append([at('web', 'kill', 10)]); // appended right after subscribing: still live
    await tick(5);
    await s.append([at('db', 'destroy', 11)]);
    await l.until(2);
    await tick(20);
    expect(seqs(l.got)).toEqual([9, 10]);
    expect(l.done()).toBe(false);
    l.sub.unsubscribe();
    await s.append([at('web', 'exit', 12)]);
    await tick(20);
    expect(seqs(l.got)).toEqual([9, 10]); // nothing after unsubscribe
  });

  it('sinceSeq: stored from there, then live, in order, once each', async () => {
    const s = await fixture();
    const l = live(s, { sinceSeq: 7 });
    await l.until(2);
    expect(seqs(l.got)).toEqual([7, 8]);
    await s.append([at('cache', 'start', 9)]);
    await s.append([at('cache', 'pause', 10), at('cache', 'resume', 11)]);
    await l.until(5);
    await tick(20);
    expect(seqs(l.got)).toEqual([7, 8, 9, 10, 11]);
    expect(l.done()).toBe(false);
    l.sub.unsubscribe();
  });

  it('filters apply to live events too', async () => {
    const s = await fixture();
    const l = live(s, { since: new Date(T0 + 5000), containerId: ['web', 'cache'], action: ['resume', 'create', 'exit'] });
    await l.until(2);
    await s.append([at('web', 'exit', 20)]);
    await s.append([at('db', 'destroy', 21)]);
    await s.append([at('web', 'pause', 22)]);
    await s.append([at('cache', 'exit', 23)]);
    await l.until(4);
    await tick(20);
    expect(l.got.map((e) => [e.seq, e.containerId, e.action])).toEqual([
      [6, 'web', 'resume'],
      [8, 'cache', 'create'],
      [9, 'web', 'exit'],
      [12, 'cache', 'exit'],
    ]);
    l.sub.unsubscribe();
  });

  it('an `until` in the future keeps following and delivers live events up to it', async () => {
    const s = await fixture();
    const future = new Date(Date.now() + 3_600_000);
    const l = live(s, { sinceSeq: 8, until: future });
    await l.until(1);
    await s.append([at('web', 'kill', 30)]);
    await l.until(2);
    expect(seqs(l.got)).toEqual([8, 9]);
    expect(l.done()).toBe(false);
    l.sub.unsubscribe();
  });
});

describe('the seam between stored and live', () => {
  it('events appended before and after the stored read, while it is in progress: no gap, no duplicate', async () => {
    const s = await fixture();
    let k = 100;
    const more = async (count: number) => {
      for (let i = 0; i < count; i++) await s.append([at('web', 'update', k++)]);
    };
    // Before the real read: these are both in the read result and heard live. After it: only heard live.
    const store = wrap(s, { before: () => more(3), after: async () => (await more(3), await tick(5)) });
    const l = live(store, { sinceSeq: 1 });
    await l.until(14);
    await more(2);
    await l.until(16);
    await tick(20);
    expect(seqs(l.got)).toEqual(range(1, 16));
    expect(l.error()).toBeUndefined();
    l.sub.unsubscribe();
  });

  it('the same with filters: the matching events of 1..N, each once, in order', async () => {
    const s = await fixture();
    let k = 100;
    const more = async (count: number) => {
      for (let i = 0; i < count; i++) await s.append([at(i % 2 ? 'db' : 'web', 'update', k++)]);
    };
    const store = wrap(s, { before: () => more(4), after: () => more(4) });
    const l = live(store, { sinceSeq: 3, containerId: 'db' });
    await l.until(7);
    await tick(20);
    expect(seqs(l.got)).toEqual([3, 5, 7, 10, 12, 14, 16]);
    l.sub.unsubscribe();
  }, 10_000);

  it('many subscribers at random moments while a writer appends: each sees exactly sinceSeq..last', async () => {
    // Seeded: the interleaving is reproducible.
    const rnd = mulberry32(0x5eed);
    const s = await fixture();
    const TOTAL = 8 + 300;
    const store = wrap(s, { before: () => tick(Math.floor(rnd() * 4)), after: () => tick(Math.floor(rnd() * 4)) });
    const writer = (async () => {
      for (let i = 0; i < 300; i++) {
        await s.append([at(`c${i % 3}`, 'update', 100 + i)]);
        if (rnd() < 0.3) await tick(1);
      }
    })();
    const subs: Array<{ from: number; l: ReturnType<typeof live> }> = [];
    for (let i = 0; i < 25; i++) {
      await tick(Math.floor(rnd() * 8));
      const from = 1 + Math.floor(rnd() * Math.max(1, s.lastSeq()));
      subs.push({ from, l: live(store, { sinceSeq: from }) });
    }
    await writer;
    for (const { from, l } of subs) {
      await l.until(TOTAL - from + 1);
      expect(seqs(l.got), `sinceSeq ${from}`).toEqual(range(from, TOTAL));
      l.sub.unsubscribe();
    }
  }, 15_000);

  it('events appended by another process during the read and after it arrive once each, in order', async () => {
    const s = await fixture();
    const file = s.path;
    const go = path.join(tmp, `go-${n}`);
    const code = `
      import fs from 'node:fs';
      const { openJournal } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/actors/event-recorder.js')).href)});
      const { newEvent } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/events/schema.js')).href)});
      const store = openJournal(${JSON.stringify(file)});
      process.stdout.write('ready\\n');
      while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
      for (let i = 0; i < 300; i++) {
        await store.append([newEvent('node-b', 'remote', 'update', { i })]);
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      await store.close();
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
      child.on('exit', () => reject(new Error(`child failed: ${stderr}`)));
      setTimeout(() => reject(new Error('child not ready')), 10_000).unref();
    });
    writeFileSync(go, '');
    // Subscribe a few times while the other process is appending; the reads are slowed so appends land during them.
    const subs: Array<ReturnType<typeof live>> = [];
    for (let i = 0; i < 4; i++) {
      subs.push(live(wrap(s, { before: () => tick(3), after: () => tick(3) }), { sinceSeq: 1 }));
      await tick(10);
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    s.refresh(); // in case the last watch event has not been handled yet
    for (const l of subs) {
      await l.until(308, 10_000);
      await tick(20);
      expect(seqs(l.got)).toEqual(range(1, 308));
      l.sub.unsubscribe();
    }
  }, 20_000);
});
