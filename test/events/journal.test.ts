/**
 * The embedded journal: numbering, durability across reopen, torn-tail repair, damage in the middle,
 * optimistic concurrency between two writers, schema validation, live subscribers fed by other processes,
 * and concurrent appends from several processes.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JournalCorruptError, JournalStore, encodeRecord } from '../../events/journal.js';
import { type CordonEvent, EventSchemaError, type NewEvent, newEvent, validateEvent } from '../../events/schema.js';
import { ConcurrencyError } from '../../events/store.js';
import { type ModuleChild, spawnModuleChild } from '../fixtures/child-process.js';
import { openJournal } from '../../actors/event-recorder.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST_JOURNAL = path.join(ROOT, 'dist/events/journal.js');
const DIST_SCHEMA = path.join(ROOT, 'dist/events/schema.js');
const DIST_RECORDER = path.join(ROOT, 'dist/actors/event-recorder.js');

const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-journal-'));
let n = 0;
const journalPath = () => path.join(tmp, `j${++n}`, 'events.journal');
const open: JournalStore[] = [];
function openStore(p: string): JournalStore {
  mkdirSync(path.dirname(p), { recursive: true });
  const s = openJournal(p);
  open.push(s);
  return s;
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ev = (containerId: string, action: NewEvent['action'] = 'update', attributes: Record<string, unknown> = {}) => newEvent('node-a', containerId, action, attributes);

/** Lines of the journal file as written. */
const lines = (p: string) => readFileSync(p).toString('utf8').split('\n').slice(0, -1);

/** Run a child Node process that opens the journal through dist/ and appends `count` events for `cid`. */
function appender(file: string, cid: string, count: number, go?: string): ModuleChild {
  const code = `
    import fs from 'node:fs';
    const { openJournal } = await import(${JSON.stringify(pathToFileURL(DIST_RECORDER).href)});
    const { newEvent } = await import(${JSON.stringify(pathToFileURL(DIST_SCHEMA).href)});
    const store = openJournal(process.env.JOURNAL);
    process.stdout.write('ready\\n');
    const go = process.env.GO;
    if (go) while (!fs.existsSync(go)) await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < Number(process.env.COUNT); i++) {
      await store.append([newEvent('node-a', process.env.CID, 'update', { i, writer: process.pid })]);
    }
    await store.close();
  `;
  return spawnModuleChild(code, { JOURNAL: file, CID: cid, COUNT: String(count), GO: go ?? '' });
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref())]);

beforeAll(() => {
  // The cross-process tests import the built journal; build first (`npx tsc -p tsconfig.json`).
  expect(existsSync(DIST_JOURNAL), `${DIST_JOURNAL} (run the build first)`).toBe(true);
});

describe('append / read / numbering', () => {
  it('numbers seq gap-free from 1 host-wide and containerSeq per container', async () => {
    const p = journalPath();
    const s = openStore(p);
    expect(s.openReport).toEqual({ records: 0, truncatedBytes: 0 });
    expect(s.lastSeq()).toBe(0);
    expect(s.containerSeq('a')).toBe(0);

    const b1 = await s.append([ev('a', 'create', { pid: 1 }), ev('a', 'start')]);
    const b2 = await s.append([ev('b', 'create', { pid: 2 })]);
    const b3 = await s.append([ev('a', 'pause')]);
    const b4 = await s.append([ev('b', 'start'), ev('b', 'kill', { signal: 9 }), ev('b', 'exit', { exitCode: null, signal: 9 })]);
    expect([...b1, ...b2, ...b3, ...b4].map((e) => [e.seq, e.containerId, e.containerSeq, e.action])).toEqual([
      [1, 'a', 1, 'create'],
      [2, 'a', 2, 'start'],
      [3, 'b', 1, 'create'],
      [4, 'a', 3, 'pause'],
      [5, 'b', 2, 'start'],
      [6, 'b', 3, 'kill'],
      [7, 'b', 4, 'exit'],
    ]);
    expect(await s.append([])).toEqual([]);
    expect(s.lastSeq()).toBe(7);
    expect(s.containerSeq('a')).toBe(3);
    expect(s.containerSeq('b')).toBe(4);
    expect(s.containerSeq('nobody')).toBe(0);
    expect(s.containers().sort()).toEqual(['a', 'b']);

    const all = await s.read();
    expect(all).toEqual([...b1, ...b2, ...b3, ...b4]);
    expect((await s.read(5)).map((e) => e.seq)).toEqual([5, 6, 7]);
    expect((await s.read(7)).map((e) => e.seq)).toEqual([7]);
    expect(await s.read(8)).toEqual([]);
    expect((await s.read(0)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(all[0].attributes).toEqual({ pid: 1 });
  });

  it('writes one `CRC32 JSON` line per record', async () => {
    const p = journalPath();
    const s = openStore(p);
    const stored = await s.append([ev('a', 'create', { pid: 1 }), ev('a', 'start')]);
    const ls = lines(p);
    expect(ls).toHaveLength(2);
    ls.forEach((line, i) => {
      const json = line.slice(9);
      expect(line.slice(0, 9)).toBe(`${crc32(json).toString(16).padStart(8, '0')} `);
      expect(JSON.parse(json)).toEqual(stored[i]);
    });
    expect(encodeRecord(stored[0]).toString()).toBe(`${ls[0]}\n`);
  });

  it('records survive reopen (and are visible to a second instance while the first is open)', async () => {
    const p = journalPath();
    const s = openStore(p);
    await s.append([ev('a', 'create', { pid: 1 })]);
    await s.append([ev('b', 'create', { pid: 2 })]);
    const written = await s.read();

    const other = openStore(p);
    expect(other.openReport).toEqual({ records: 2, truncatedBytes: 0 });
    expect(await other.read()).toEqual(written);
    await s.close();

    const again = openStore(p);
    expect(again.openReport).toEqual({ records: 2, truncatedBytes: 0 });
    expect(await again.read()).toEqual(written);
    const [next] = await again.append([ev('a', 'start')]);
    expect([next.seq, next.containerSeq]).toEqual([3, 2]);
  });

  it('a batch must be one container', async () => {
    const s = openStore(journalPath());
    await expect(s.append([ev('a'), ev('b')])).rejects.toThrow('one container per batch');
    expect(s.lastSeq()).toBe(0);
  });
});

describe('torn tail and damage', () => {
  /** A journal with three records, closed; returns its path, bytes and the stored events. */
  async function threeRecords() {
    const p = journalPath();
    const s = openStore(p);
    await s.append([ev('a', 'create', { pid: 1 })]);
    await s.append([ev('a', 'start')]);
    await s.append([ev('b', 'create', { pid: 2 })]);
    const events = await s.read();
    await s.close();
    return { p, bytes: readFileSync(p), events };
  }
  const fourth = (): CordonEvent => ({ ...ev('b', 'start'), seq: 4, containerSeq: 2 });

  async function expectRepaired(p: string, good: Buffer, events: CordonEvent[], cut: number) {
    const s = openStore(p);
    expect(s.openReport).toEqual({ records: 3, truncatedBytes: cut });
    expect(readFileSync(p).equals(good)).toBe(true); // cut exactly at the end of the last good record
    expect(await s.read()).toEqual(events);
    const [e] = await s.append([ev('b', 'start')]);
    expect([e.seq, e.containerSeq]).toEqual([4, 2]);
    await s.close();
    const again = openStore(p);
    expect(again.openReport).toEqual({ records: 4, truncatedBytes: 0 });
  }

  it('(a) a last record without its newline is cut off on open', async () => {
    const { p, bytes, events } = await threeRecords();
    const rec = encodeRecord(fourth());
    const torn = rec.subarray(0, rec.length - 1); // complete JSON, valid CRC, no newline
    appendFileSync(p, torn);
    await expectRepaired(p, bytes, events, torn.length);
  });

  it('(a) half a record is cut off on open', async () => {
    const { p, bytes, events } = await threeRecords();
    const rec = encodeRecord(fourth());
    const torn = rec.subarray(0, Math.floor(rec.length / 2));
    appendFileSync(p, torn);
    await expectRepaired(p, bytes, events, torn.length);
  });

  it('(b) a last line whose CRC does not match is cut off on open', async () => {
    const { p, bytes, events } = await threeRecords();
    const rec = Buffer.from(encodeRecord(fourth()).toString().replace('"action":"start"', '"action":"pause"'));
    expect(rec.at(-1)).toBe(0x0a);
    appendFileSync(p, rec);
    await expectRepaired(p, bytes, events, rec.length);
  });

  it('(b) a last line with a garbled CRC field is cut off on open', async () => {
    const { p, bytes, events } = await threeRecords();
    const rec = Buffer.from(`zzzzzzzz${encodeRecord(fourth()).toString().slice(8)}`);
    appendFileSync(p, rec);
    await expectRepaired(p, bytes, events, rec.length);
  });

  it('damage in the middle is quarantined: the same bytes become a marker, the record after it is kept', async () => {
    const { p, bytes, events } = await threeRecords();
    const ls = bytes.toString().split('\n');
    const offset = Buffer.byteLength(ls[0]) + 1; // record 2 starts here
    const damaged = Buffer.from(bytes.toString().replace('"action":"start"', '"action":"pause"'));
    expect(damaged.length).toBe(bytes.length);
    writeFileSync(p, damaged);
    const s = openStore(p);
    expect(s.openReport).toEqual({ records: 3, truncatedBytes: 0 });
    expect(s.quarantines.map((q) => [q.offset, q.length, q.seqs, q.reason, q.action, q.containers])).toEqual([[offset, Buffer.byteLength(ls[1]) + 1, [2, 2], 'checksum mismatch', 'marked', ['a']]]);
    const after = readFileSync(p);
    expect(after.length).toBe(damaged.length); // every offset stays valid
    expect(after.subarray(0, offset).equals(damaged.subarray(0, offset))).toBe(true);
    expect(after.subarray(offset + Buffer.byteLength(ls[1]) + 1).equals(damaged.subarray(offset + Buffer.byteLength(ls[1]) + 1))).toBe(true);
    expect(lines(p)[1]).toMatch(/^[0-9a-f]{8} \{"quarantined":\[2,2\],"containers":\{"a":2\},"reason":"checksum mismatch" +\}$/);
    expect(await s.read()).toEqual([events[0], events[2]]);
    expect(s.containerSeq('a')).toBe(2); // read out of the damaged text: the next fact of a does not reuse 2
  });

  it('a damaged second-to-last record is damage in the middle, not a torn tail', async () => {
    const { p, bytes, events } = await threeRecords();
    const ls = bytes.toString().split('\n');
    const offset = Buffer.byteLength(ls[0]) + Buffer.byteLength(ls[1]) + 2;
    const fourthRec = encodeRecord(fourth());
    writeFileSync(p, Buffer.concat([Buffer.from(`${ls[0]}\n${ls[1]}\nXX${ls[2].slice(2)}\n`), fourthRec]));
    const s = openStore(p);
    expect(s.quarantines.map((q) => [q.offset, q.seqs, q.action])).toEqual([[offset, [3, 3], 'marked']]);
    expect((await s.read()).map((e) => e.seq)).toEqual([1, 2, 4]);
    expect(await s.read(3, 3)).toEqual([]);
    expect((await s.read(1, 2))).toEqual(events.slice(0, 2));
  });

  it('a missing record (sequence gap, no bytes left) is taken as it is and noted once in the quarantine file', async () => {
    const { p, bytes } = await threeRecords();
    const ls = bytes.toString().split('\n');
    writeFileSync(p, `${ls[0]}\n${ls[2]}\n`);
    const warnings: string[] = [];
    const s = JournalStore.open(p, { lock: (_fd, fn) => fn(), onWarning: (m) => warnings.push(m) });
    open.push(s);
    expect(s.lastSeq()).toBe(3);
    expect((await s.read()).map((e) => e.seq)).toEqual([1, 3]);
    expect(warnings).toEqual([`journal ${p}: seq 2 missing before byte ${Buffer.byteLength(ls[0]) + 1} (no bytes left): noted in ${p}.quarantine`]);
    const again = JournalStore.open(p, { lock: (_fd, fn) => fn(), onWarning: (m) => warnings.push(m) });
    open.push(again);
    expect(warnings).toHaveLength(1); // noted once
    expect((await again.append([ev('b', 'start')]))[0].seq).toBe(4);
  });

  it('damage too short for a marker is refused naming `journal repair`, changes nothing, and leaves no file descriptor behind', async () => {
    const { p, bytes } = await threeRecords();
    const ls = bytes.toString().split('\n');
    const damaged = Buffer.from(`${ls[0]}\n\n${ls[1]}\n${ls[2]}\n`); // a newline added between two records
    writeFileSync(p, damaged);
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 5; i++) {
      expect(() => openJournal(p)).toThrow(`journal ${p} is damaged at byte ${Buffer.byteLength(ls[0]) + 1}: checksum mismatch; 1 damaged byte(s), too few for a quarantine marker: run "cordon --root ${path.dirname(p)} journal repair"`);
    }
    expect(fds()).toBe(before);
    expect(readFileSync(p).equals(damaged)).toBe(true);
    expect(existsSync(`${p}.quarantine`)).toBe(false);
    expect(() => openJournal(p)).toThrow(JournalCorruptError);
  });
});

describe('optimistic concurrency', () => {
  it('two supervisors append for one container with the same expectedContainerSeq: exactly one ConcurrencyError; the loser retries and wins', async () => {
    const p = journalPath();
    const a = openStore(p);
    await a.append([ev('web', 'create', { pid: 1 })]);
    const b = openStore(p);
    expect(a.containerSeq('web')).toBe(1);
    expect(b.containerSeq('web')).toBe(1);

    const results = await Promise.allSettled([
      a.append([ev('web', 'start')], { expectedContainerSeq: 1 }),
      b.append([ev('web', 'kill', { signal: 9 })], { expectedContainerSeq: 1 }),
    ]);
    const rejected = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    const fulfilled = results.filter((r) => r.status === 'fulfilled') as Array<PromiseFulfilledResult<CordonEvent[]>>;
    expect(rejected).toHaveLength(1);
    expect(fulfilled).toHaveLength(1);
    const err = rejected[0].reason as ConcurrencyError;
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect([err.containerId, err.expected, err.actual]).toEqual(['web', 1, 2]);
    expect(fulfilled[0].value.map((e) => [e.seq, e.containerSeq])).toEqual([[2, 2]]);

    // The loser knows the fresh sequence now and retries with it.
    const loser = results[0].status === 'rejected' ? a : b;
    expect(loser.containerSeq('web')).toBe(2);
    const retried = await loser.append([ev('web', 'kill', { signal: 9 })], { expectedContainerSeq: loser.containerSeq('web') });
    expect(retried.map((e) => [e.seq, e.containerSeq])).toEqual([[3, 3]]);

    // A stale expectation after that still fails; another container is unaffected.
    await expect(a.append([ev('web', 'pause')], { expectedContainerSeq: 2 })).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(a.append([ev('db', 'create')], { expectedContainerSeq: 0 })).resolves.toHaveLength(1);

    const fresh = openStore(p);
    expect((await fresh.read()).map((e) => [e.seq, e.containerId, e.containerSeq])).toEqual([
      [1, 'web', 1],
      [2, 'web', 2],
      [3, 'web', 3],
      [4, 'db', 1],
    ]);
  });
});

describe('schema validation', () => {
  it('append rejects a bad event naming the field, and stores nothing', async () => {
    const p = journalPath();
    const s = openStore(p);
    await s.append([ev('a', 'create')]);
    const size = statSync(p).size;

    const bad = { ...ev('a', 'start'), action: 'explode' } as unknown as NewEvent;
    const err = await s.append([bad]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventSchemaError);
    expect((err as EventSchemaError).issues).toHaveLength(1);
    expect((err as EventSchemaError).issues[0]).toMatch(/^action: expected one of create, start, .*, got "explode"$/);

    const worse = { ...ev('a', 'start'), host: '', id: 'not-a-uuid', attributes: [] } as unknown as NewEvent;
    const err2 = (await s.append([ev('a', 'start'), worse]).catch((e: unknown) => e)) as EventSchemaError;
    expect(err2).toBeInstanceOf(EventSchemaError);
    expect(err2.issues.map((i) => i.split(':')[0])).toEqual(['id', 'host', 'attributes']);
    expect(err2.message).toContain('host: expected a non-empty string, got ""');

    expect(statSync(p).size).toBe(size);
    expect(s.lastSeq()).toBe(1);
    expect(s.containerSeq('a')).toBe(1);
    expect((await s.append([ev('a', 'start')]))[0].seq).toBe(2);
  });

  it('validateEvent names each bad field', () => {
    expect(() => validateEvent(null)).toThrow('event: expected an object');
    const good: CordonEvent = { ...ev('a', 'start'), seq: 1, containerSeq: 1 };
    expect(validateEvent(good)).toBe(good);
    const issues = (x: unknown, opts?: { numbered?: boolean }) => {
      try {
        validateEvent(x, opts);
        return [];
      } catch (e) {
        return (e as EventSchemaError).issues.map((i) => i.split(':')[0]);
      }
    };
    expect(issues({ ...good, seq: 0, containerSeq: 1.5 })).toEqual(['seq', 'containerSeq']);
    expect(issues({ ...good, v: 2, type: 'image', time: 'yesterday', timeNano: 'x' })).toEqual(['v', 'time', 'timeNano', 'type']);
    expect(issues({ ...good, containerId: '', from: 1, to: null })).toEqual(['containerId', 'from', 'to']);
    expect(issues({ ...ev('a', 'start') })).toEqual(['seq', 'containerSeq']);
    expect(issues({ ...ev('a', 'start') }, { numbered: false })).toEqual([]);
  });
});

describe('other processes', () => {
  it('appends from a second process reach a subscriber in this process (through the watch)', async () => {
    const p = journalPath();
    const s = openStore(p);
    await s.append([ev('local', 'create')]);
    const got: CordonEvent[] = [];
    let seen3: () => void = () => {};
    const three = new Promise<void>((resolve) => (seen3 = resolve));
    const unsubscribe = s.subscribe((e) => {
      got.push(e);
      if (got.length >= 3) seen3();
    });
    const child = appender(p, 'remote', 3);
    const { code, stderr } = await within(child.done, 15_000, 'child appender');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    await within(three, 10_000, 'subscriber to hear 3 remote events');
    await new Promise((r) => setTimeout(r, 100)); // later watch events must not repeat them
    unsubscribe();
    expect(got.map((e) => [e.seq, e.containerId, e.containerSeq, e.attributes.i])).toEqual([
      [2, 'remote', 1, 0],
      [3, 'remote', 2, 1],
      [4, 'remote', 3, 2],
    ]);
    expect(s.lastSeq()).toBe(4);
    // And this process's own next append follows them.
    expect((await s.append([ev('local', 'start')]))[0].seq).toBe(5);
  });

  it('4 processes × 200 appends: 800 records, seq 1..800 without gaps or duplicates', async () => {
    const p = journalPath();
    const s = openStore(p); // creates the file
    const go = path.join(path.dirname(p), 'go');
    const kids = [0, 1, 2, 3].map((i) => appender(p, `p${i}`, 200, go));
    await within(Promise.all(kids.map((k) => k.ready)), 15_000, 'children ready');
    writeFileSync(go, '');
    const results = await within(Promise.all(kids.map((k) => k.done)), 30_000, 'children done');
    expect(results).toEqual([0, 1, 2, 3].map(() => ({ code: 0, stderr: '' })));

    const fresh = openStore(p);
    expect(fresh.openReport).toEqual({ records: 800, truncatedBytes: 0 });
    const all = await fresh.read();
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
    expect(new Set(all.map((e) => e.id)).size).toBe(800);
    for (let i = 0; i < 4; i++) {
      const mine = all.filter((e) => e.containerId === `p${i}`);
      expect(mine.map((e) => e.containerSeq)).toEqual(Array.from({ length: 200 }, (_, k) => k + 1));
      expect(mine.map((e) => e.attributes.i)).toEqual(Array.from({ length: 200 }, (_, k) => k));
    }
    // The first store catches up too.
    expect((await s.read()).length).toBe(800);
    expect(s.lastSeq()).toBe(800);
  });
});
