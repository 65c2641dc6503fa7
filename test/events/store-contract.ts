/**
 * The EventStore contract as a shared suite: numbering, reads from any sequence, durability across
 * reopen, optimistic concurrency, schema validation, live subscribers and concurrent appends. Run by
 * test/events/journal-contract.test.ts (embedded journal) and test/nats/jetstream-store.test.ts (JetStream).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type CordonEvent, EventSchemaError, type NewEvent, newEvent } from '../../events/schema.js';
import { ConcurrencyError, type EventStore } from '../../events/store.js';

/** Makes stores for the suite: a fresh empty log, and the same log opened again. */
export interface StoreFactory {
  /** A new, empty log; `reopen` closes the given store and opens its log again. */
  fresh(): Promise<{ store: EventStore; reopen: () => Promise<EventStore> }>;
}

const ev = (containerId: string, action: NewEvent['action'] = 'update', attributes: Record<string, unknown> = {}) => newEvent('node-a', containerId, action, attributes);

/** Register the contract tests for one store implementation. */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`EventStore contract: ${name}`, () => {
    const opened: EventStore[] = [];
    const fresh = async () => {
      const f = await factory.fresh();
      opened.push(f.store);
      return {
        store: f.store,
        reopen: async () => {
          const s = await f.reopen();
          opened.push(s);
          return s;
        },
      };
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => {});
    });

    it('numbers seq gap-free host-wide and containerSeq per container; reads from any seq', async () => {
      const { store: s } = await fresh();
      expect(s.lastSeq()).toBe(0);
      expect(s.containerSeq('a')).toBe(0);
      const b1 = await s.append([ev('a', 'create', { pid: 1 }), ev('a', 'start')]);
      const b2 = await s.append([ev('b', 'create', { pid: 2 })]);
      const b3 = await s.append([ev('a', 'pause')]);
      expect([...b1, ...b2, ...b3].map((e) => [e.seq, e.containerId, e.containerSeq, e.action])).toEqual([
        [1, 'a', 1, 'create'],
        [2, 'a', 2, 'start'],
        [3, 'b', 1, 'create'],
        [4, 'a', 3, 'pause'],
      ]);
      expect(await s.append([])).toEqual([]);
      expect(s.lastSeq()).toBe(4);
      expect(s.containerSeq('a')).toBe(3);
      expect(s.containerSeq('b')).toBe(1);
      expect(await s.read()).toEqual([...b1, ...b2, ...b3]);
      expect((await s.read(3)).map((e) => e.seq)).toEqual([3, 4]);
      expect((await s.read(4)).map((e) => e.seq)).toEqual([4]);
      expect(await s.read(5)).toEqual([]);
      expect((await s.read(0)).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      expect((await s.read())[0].attributes).toEqual({ pid: 1 });
    });

    it('a batch must be one container', async () => {
      const { store: s } = await fresh();
      await expect(s.append([ev('a'), ev('b')])).rejects.toThrow('one container per batch');
      expect(s.lastSeq()).toBe(0);
    });

    it('events survive reopen and numbering continues', async () => {
      const { store: s, reopen } = await fresh();
      await s.append([ev('a', 'create', { pid: 1 })]);
      await s.append([ev('b', 'create', { pid: 2 }), ev('b', 'start')]);
      const written = await s.read();
      const again = await reopen();
      expect(again.lastSeq()).toBe(3);
      expect(again.containerSeq('b')).toBe(2);
      expect(await again.read()).toEqual(written);
      const [next] = await again.append([ev('a', 'start')]);
      expect([next.seq, next.containerSeq]).toEqual([4, 2]);
    });

    it('a stale expectedContainerSeq is a ConcurrencyError and stores nothing', async () => {
      const { store: s } = await fresh();
      await s.append([ev('web', 'create')], { expectedContainerSeq: 0 });
      await s.append([ev('web', 'start')], { expectedContainerSeq: 1 });
      const err = await s.append([ev('web', 'kill')], { expectedContainerSeq: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConcurrencyError);
      expect([(err as ConcurrencyError).containerId, (err as ConcurrencyError).expected, (err as ConcurrencyError).actual]).toEqual(['web', 1, 2]);
      expect(s.lastSeq()).toBe(2);
      await expect(s.append([ev('db', 'create')], { expectedContainerSeq: 0 })).resolves.toHaveLength(1);
      expect((await s.read()).map((e) => [e.seq, e.containerId, e.containerSeq])).toEqual([
        [1, 'web', 1],
        [2, 'web', 2],
        [3, 'db', 1],
      ]);
    });

    it('a bad event is refused naming the field, and nothing of its batch is stored', async () => {
      const { store: s } = await fresh();
      await s.append([ev('a', 'create')]);
      const bad = { ...ev('a', 'start'), action: 'explode' } as unknown as NewEvent;
      const err = await s.append([ev('a', 'start'), bad]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EventSchemaError);
      expect((err as EventSchemaError).issues[0]).toMatch(/^action: expected one of/);
      expect(s.lastSeq()).toBe(1);
      expect(s.containerSeq('a')).toBe(1);
      expect((await s.read()).length).toBe(1);
      expect((await s.append([ev('a', 'start')]))[0].seq).toBe(2);
    });

    it('subscribers hear appends after subscribing, in order, until they unsubscribe', async () => {
      const { store: s } = await fresh();
      await s.append([ev('a', 'create')]);
      const got: CordonEvent[] = [];
      const off = s.subscribe((e) => got.push(e));
      await s.append([ev('a', 'start'), ev('a', 'pause')]);
      await s.append([ev('b', 'create')]);
      off();
      await s.append([ev('b', 'start')]);
      await new Promise((r) => setTimeout(r, 50));
      expect(got.map((e) => [e.seq, e.containerId, e.action])).toEqual([
        [2, 'a', 'start'],
        [3, 'a', 'pause'],
        [4, 'b', 'create'],
      ]);
    });

    it('50 concurrent appends for 5 containers: gap-free seq, per-container order kept', async () => {
      const { store: s } = await fresh();
      await Promise.all(Array.from({ length: 50 }, (_, i) => s.append([ev(`c${i % 5}`, 'update', { i })])));
      const all = await s.read();
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(new Set(all.map((e) => e.id)).size).toBe(50);
      for (let c = 0; c < 5; c++) {
        const mine = all.filter((e) => e.containerId === `c${c}`);
        expect(mine.map((e) => e.containerSeq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(mine.map((e) => e.attributes.i)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45].map((k) => k + c));
      }
    });
  });
}
