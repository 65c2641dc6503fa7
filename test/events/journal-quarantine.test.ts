/**
 * A journal that survives the disk (appends: journal-append.test.ts): a damaged middle record (a byte flipped, a newline lost or added, a
 * garbage line) is quarantined — copied aside, replaced in place by a marker of the same length — so opens,
 * reads before and after it, appends, the snapshot and `cordon journal check|repair` all work; several
 * processes appending while one record is damaged lose nothing.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openJournal, openRecorderJournal } from '../../actors/event-recorder.js';
import { JournalStore, encodeRecord, readQuarantine } from '../../events/journal.js';
import { readSnapshot, snapshotPathOf } from '../../events/journal-snapshot.js';
import { type CordonEvent, type NewEvent, newEvent } from '../../events/schema.js';
import { applyFact } from '../../machines/replay.js';
import { Supervisor } from '../../actors/supervisor.js';
import { initialLifecycle } from '../../machines/lifecycle.js';
import { spawnModuleChild } from '../fixtures/child-process.js';
import { cordon, removeIoDir } from '../cli/helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-jquar-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeIoDir();
});
let n = 0;
const journalPath = () => {
  const dir = path.join(tmp, `j${++n}`);
  mkdirSync(dir);
  return path.join(dir, 'events.journal');
};
const opened: JournalStore[] = [];
const track = (s: JournalStore) => (opened.push(s), s);
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

const ev = (id: string, action: NewEvent['action'] = 'update', attributes: Record<string, unknown> = {}) => newEvent('node-a', id, action, attributes);

/** A journal of six records (containers a and b), closed; its path, bytes, events and line offsets. */
async function sixRecords() {
  const p = journalPath();
  const s = openJournal(p);
  for (const [id, action] of [['a', 'create'], ['a', 'start'], ['b', 'create'], ['a', 'pause'], ['b', 'start'], ['a', 'resume']] as const) await s.append([ev(id, action, { pid: 7 })]);
  const events = await s.read();
  await s.close();
  const bytes = readFileSync(p);
  const starts = [0];
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < bytes.length - 1; i = bytes.indexOf(0x0a, i + 1)) starts.push(i + 1);
  return { p, root: path.dirname(p), bytes, events, starts };
}

/** The ways a middle record (seq 3, container b's create) gets damaged, and the range and seqs that result. */
const DAMAGE: Array<{ name: string; damage: (b: Buffer, starts: number[]) => Buffer; range: (starts: number[]) => [number, number]; seqs: [number, number]; lost: number[] }> = [
  {
    name: 'one byte flipped',
    damage: (b, st) => {
      const c = Buffer.from(b);
      c[st[2] + 60] ^= 0x01;
      return c;
    },
    range: (st) => [st[2], st[3] - st[2]],
    seqs: [3, 3],
    lost: [3],
  },
  {
    name: 'a newline lost',
    damage: (b, st) => Buffer.concat([b.subarray(0, st[3] - 1), b.subarray(st[3])]),
    range: (st) => [st[2], st[4] - st[2] - 1],
    seqs: [3, 4],
    lost: [3, 4],
  },
  {
    name: 'a newline added inside a record',
    damage: (b, st) => Buffer.concat([b.subarray(0, st[2] + 40), Buffer.from('\n'), b.subarray(st[2] + 40)]),
    range: (st) => [st[2], st[3] - st[2] + 1],
    seqs: [3, 3],
    lost: [3],
  },
  {
    name: 'a garbage line',
    damage: (b, st) => Buffer.concat([b.subarray(0, st[3]), Buffer.from(`${'#'.repeat(70)} not a record\n`), b.subarray(st[3])]),
    range: (st) => [st[3], 84],
    seqs: [4, 3],
    lost: [],
  },
];

describe('a damaged middle record', () => {
  for (const d of DAMAGE) {
    it(`${d.name}: check finds it (exit 1), open quarantines it, reads and appends go on, check is clean after`, async () => {
      const { p, root, bytes, events, starts } = await sixRecords();
      const damaged = d.damage(bytes, starts);
      writeFileSync(p, damaged);
      const [offset, length] = d.range(starts);

      const before = await cordon(root, ['journal', 'check']);
      expect(before.code, before.stderr).toBe(1);
      expect(before.stdout).toContain(`byte ${offset}, ${length} bytes: `);
      expect(before.stdout).toContain(`DAMAGED: run "cordon --root ${root} journal repair"`);
      const json = JSON.parse((await cordon(root, ['journal', 'check', '--format', 'json'])).stdout) as { damage: Array<{ offset: number; length: number; seqs: number[] }>; clean: boolean };
      expect(json.damage.map((x) => [x.offset, x.length, x.seqs])).toEqual([[offset, length, d.seqs]]);
      expect(readFileSync(p).equals(damaged)).toBe(true); // check changes nothing

      const warnings: string[] = [];
      const s = track(openJournal(p, { onWarning: (m) => warnings.push(m) }));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`journal ${p}: ${length} damaged byte(s) at byte ${offset}`);
      expect(warnings[0]).toContain(d.seqs[1] >= d.seqs[0] ? `holding seq` : 'holding no event');
      expect(warnings[0]).toContain(`in ${p}.quarantine`);
      if (d.lost.includes(3)) expect(warnings[0]).toContain('container(s) b');
      // The damaged bytes are in the quarantine file; in the journal a marker of the same length took their place.
      const [q] = readQuarantine(p);
      expect([q.offset, q.length, q.seqs, q.action]).toEqual([offset, length, d.seqs, 'marked']);
      expect(Buffer.from(q.bytes, 'base64').equals(damaged.subarray(offset, offset + length))).toBe(true);
      const now = readFileSync(p);
      expect(now.length).toBe(damaged.length);
      expect(now.subarray(0, offset).equals(damaged.subarray(0, offset))).toBe(true);
      expect(now.subarray(offset + length).equals(damaged.subarray(offset + length))).toBe(true);

      const kept = events.filter((e) => !d.lost.includes(e.seq));
      expect(await s.read()).toEqual(kept);
      expect(await s.read(1, 2)).toEqual(events.slice(0, 2));
      expect(await s.read(5)).toEqual(events.slice(4));
      expect(s.lastSeq()).toBe(6);
      const [next] = await s.append([ev('b', 'pause')]);
      expect([next.seq, next.containerSeq]).toEqual([7, 3]);
      const [nextA] = await s.append([ev('a', 'pause')]);
      expect([nextA.seq, nextA.containerSeq]).toEqual([8, 5]);

      const after = await cordon(root, ['journal', 'check']);
      expect(after.code, after.stdout).toBe(0);
      expect(after.stdout).toContain('quarantine markers: 1');
      expect(after.stdout).toContain(`quarantine file ${p}.quarantine: 1 entries`);
      expect(after.stdout).toContain(`byte ${offset}, ${length} bytes`);
      expect(after.stdout).toMatch(/\nclean\n$/);
      // Opened again (by anyone): nothing more to quarantine, the same records.
      const again = track(openJournal(p));
      expect(again.quarantines).toEqual([]);
      expect((await again.read()).map((e) => e.seq)).toEqual([...kept.map((e) => e.seq), 7, 8]);
    });
  }

  it('a stray good line with a far seq is itself the damage: the records after it are kept', async () => {
    const { p, bytes, events, starts } = await sixRecords();
    const stray = encodeRecord({ ...ev('z', 'update', { from: 'elsewhere' }), seq: 900, containerSeq: 1 });
    writeFileSync(p, Buffer.concat([bytes.subarray(0, starts[3]), stray, bytes.subarray(starts[3])]));
    const s = track(openJournal(p));
    expect(s.quarantines.map((q) => [q.offset, q.length, q.seqs, q.reason])).toEqual([[starts[3], stray.length, [4, 3], 'sequence 900 follows 3']]);
    expect(await s.read()).toEqual(events);
    expect((await s.append([ev('a', 'kill')]))[0].seq).toBe(7);
  });

  it('two damaged records with a good one between: two markers, the good one kept', async () => {
    const { p, bytes, events, starts } = await sixRecords();
    const damaged = Buffer.from(bytes);
    damaged[starts[2] + 60] ^= 0x01;
    damaged[starts[4] + 60] ^= 0x01;
    writeFileSync(p, damaged);
    const s = track(openJournal(p));
    expect(s.quarantines.map((q) => [q.offset, q.seqs])).toEqual([[starts[2], [3, 3]], [starts[4], [5, 5]]]);
    expect((await s.read()).map((e) => e.seq)).toEqual([1, 2, 4, 6]);
    expect(await s.read(4, 4)).toEqual([events[3]]);
  });

  it('the snapshot path still works over a marker, and `journal repair` rewrites the snapshot', async () => {
    const { p, root, bytes, starts } = await sixRecords();
    writeFileSync(p, DAMAGE[0].damage(bytes, starts));
    const s = track(openRecorderJournal(p));
    s.snapshot();
    const snap = readSnapshot(snapshotPathOf(p));
    expect(snap).toMatchObject({ seq: 6, offset: bytes.length });
    const viaSnap = track(openRecorderJournal(p));
    expect(viaSnap.openStats).toEqual({ snapshot: 'used', snapshotSeq: 6, parsedRecords: 0 });
    expect((await viaSnap.read()).map((e) => e.seq)).toEqual([1, 2, 4, 5, 6]);
    expect(viaSnap.containerSeq('b')).toBe(2);
    const check = await cordon(root, ['journal', 'check']);
    expect(check.stdout).toContain(`snapshot ${p}.snapshot: matches (seq 6, byte ${bytes.length})`);
    const rep = await cordon(root, ['journal', 'repair']);
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).toBe(`journal ${p}: no damage found\nsnapshot ${p}.snapshot written anew (up to seq 6)\n`);
    expect(track(openRecorderJournal(p)).openStats).toEqual({ snapshot: 'used', snapshotSeq: 6, parsedRecords: 0 });
  });
});

describe('the snapshot', () => {
  it("damage to the very record a snapshot ends with: the snapshot no longer matches, a full read quarantines it", async () => {
    const { p, bytes, starts } = await sixRecords();
    const s = track(openRecorderJournal(p));
    s.snapshot();
    expect(readSnapshot(snapshotPathOf(p))).toMatchObject({ seq: 6, lastOffset: starts[5] });
    const damaged = Buffer.from(bytes);
    damaged[starts[5] + 60] ^= 0x01;
    writeFileSync(p, Buffer.concat([damaged, encodeRecord({ ...ev('a', 'kill', { signal: 9 }), seq: 7, containerSeq: 5 })]));
    const again = track(openRecorderJournal(p));
    expect(again.openStats.snapshot).toBe('mismatch');
    expect(again.quarantines.map((q) => [q.offset, q.seqs])).toEqual([[starts[5], [6, 6]]]);
    expect((await again.read(5)).map((e) => e.seq)).toEqual([5, 7]);
  });
});

describe('cordon journal repair', () => {
  it('absorbs a range too short for a marker into the record before it; the refused open then works', async () => {
    const { p, root, bytes, events, starts } = await sixRecords();
    const damaged = Buffer.concat([bytes.subarray(0, starts[3]), Buffer.from('zz\n'), bytes.subarray(starts[3])]);
    writeFileSync(p, damaged);
    expect(() => openJournal(p)).toThrow(`journal ${p} is damaged at byte ${starts[3]}: checksum mismatch; 3 damaged byte(s), too few for a quarantine marker: run "cordon --root ${root} journal repair"`);
    const rep = await cordon(root, ['journal', 'repair']);
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout).toContain(`journal ${p}: 3 damaged byte(s) at byte ${starts[3]} (checksum mismatch) holding no event: copied aside and absorbed as spaces into the record next to them`);
    expect(readFileSync(p).length).toBe(damaged.length);
    expect(readQuarantine(p).map((q) => [q.offset, q.length, q.action, Buffer.from(q.bytes, 'base64').toString()])).toEqual([[starts[3], 3, 'padded', 'zz\n']]);
    const s = track(openJournal(p));
    expect(await s.read()).toEqual(events);
    expect((await cordon(root, ['journal', 'check'])).code).toBe(0);
  });

  it('a short range that held a record is quarantined together with the record before it; a torn tail is cut', async () => {
    const { p, root, bytes, events, starts } = await sixRecords();
    const tail = '0badc0de {"v":1,"seq":7,';
    writeFileSync(p, Buffer.concat([bytes.subarray(0, starts[2]), Buffer.from('x\n'), bytes.subarray(starts[3]), Buffer.from(tail)]));
    const rep = await cordon(root, ['journal', 'repair']);
    expect(rep.code, rep.stderr).toBe(0);
    expect(readQuarantine(p).map((q) => [q.offset, q.seqs, q.action])).toEqual([[starts[1], [2, 3], 'merged'], [starts[2] + 2 + bytes.length - starts[3], [7, 6], 'cut']]);
    expect((await track(openJournal(p)).read()).map((e) => e.seq)).toEqual([1, 4, 5, 6]);
    expect(Buffer.from(readQuarantine(p)[0].bytes, 'base64').toString()).toBe(`${encodeRecord(events[1]).toString()}x\n`);
    const check = await cordon(root, ['journal', 'check', '--format', 'json']);
    expect(JSON.parse(check.stdout)).toMatchObject({ clean: true, records: 4, lastSeq: 6, markers: [{ offset: starts[1], seqs: [2, 3] }] });
  });
});

describe('the rest of the log', () => {
  it('a subscriber fed by the file watch: damage in what another writer appended is quarantined under the lock, the events around it arrive', async () => {
    const { p } = await sixRecords();
    const warnings: string[] = [];
    const s = track(openJournal(p, { onWarning: (m) => warnings.push(m) }));
    const got: number[] = [];
    let nine: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (nine = resolve));
    s.subscribe((e) => {
      got.push(e.seq);
      if (e.seq === 9) nine();
    });
    const recs = [7, 8, 9].map((seq, i) => encodeRecord({ ...ev('c', 'update', { i }), seq, containerSeq: i + 1 }));
    recs[1][40] ^= 0x01; // record 8 damaged
    appendFileSync(p, Buffer.concat(recs));
    await Promise.race([arrived, new Promise((_, reject) => setTimeout(() => reject(new Error(`no event 9 within 10 s (got ${got.join(',')})`)), 10_000).unref())]);
    expect(got).toEqual([7, 9]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`damaged byte(s) at byte ${statSync(p).size - recs[2].length - recs[1].length} (checksum mismatch) holding seq 8`);
    expect(s.containerSeq('c')).toBe(3);
    expect(readQuarantine(p)).toHaveLength(1);
  });

  it('importEvents keeps seq gaps (seqs another journal quarantined) as markers', async () => {
    const p = journalPath();
    const s = track(openJournal(p));
    const numbered = (e: NewEvent, seq: number, containerSeq: number): CordonEvent => ({ ...e, seq, containerSeq });
    const imported = [numbered(ev('a', 'create'), 1, 1), numbered(ev('a', 'pause'), 4, 3), numbered(ev('a', 'resume'), 5, 4)];
    await s.importEvents(imported);
    expect(await s.read()).toEqual(imported);
    expect(s.lastSeq()).toBe(5);
    expect((await s.append([ev('a', 'kill')]))[0].seq).toBe(6);
    const fresh = track(openJournal(p));
    expect(fresh.quarantines).toEqual([]);
    expect((await fresh.read(2)).map((e) => e.seq)).toEqual([4, 5, 6]);
  });

  it('a supervisor starts over a journal whose early record is damaged: warned once, every container recovered', async () => {
    const file = journalPath();
    const recs: Buffer[] = [];
    let seq = 0;
    const moves = { create: ['creating', 'created'], start: ['created', 'running'], exit: ['running', 'stopped'] } as const;
    for (const [k, action] of (['create', 'start', 'exit'] as const).entries()) {
      for (const id of ['s0', 's1', 's2']) {
        const attrs = action === 'exit' ? { exitCode: 0, signal: null } : { pid: 100 };
        const e = newEvent('node-a', id, action, attrs, { from: moves[action][0], to: moves[action][1] });
        recs.push(encodeRecord({ ...e, seq: ++seq, containerSeq: k + 1 }));
      }
    }
    recs[1][50] ^= 0x01; // s1's create
    writeFileSync(file, Buffer.concat(recs));
    const warnings: string[] = [];
    const sup = await Supervisor.start({ root: path.dirname(file), host: 'node-a', onWarning: (m) => warnings.push(m) });
    try {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('holding seq 2');
      expect(warnings[0]).toContain('container(s) s1');
      expect(sup.ids()).toEqual(['s0', 's1', 's2']);
      expect(sup.ids().map((id) => sup.stateOf(id))).toEqual(['stopped', 'stopped', 'stopped']);
    } finally {
      await sup.stop();
    }
  });

  it('replay: a fact logged as a transition from another state (the facts before it lost) takes the state it logged', () => {
    const s0 = initialLifecycle('c');
    const started = applyFact(s0, { action: 'start', containerId: 'c', attributes: { pid: 42 }, from: 'created', to: 'running' });
    expect(started.value).toBe('running');
    expect(started.context.pid).toBe(42);
    // An illegal fact without a logged transition is still ignored.
    expect(applyFact(s0, { action: 'start', containerId: 'c', attributes: {} })).toBe(s0);
    expect(applyFact(started, { action: 'kill', containerId: 'c', attributes: { signal: 9 } }).value).toBe('running');
  });
});

describe('several processes', () => {
  it('4 processes append while one record is damaged: every append lands, seqs unique and continuous but for the marker', async () => {
    const { p, bytes, starts } = await sixRecords();
    writeFileSync(p, DAMAGE[0].damage(bytes, starts));
    const go = path.join(path.dirname(p), 'go');
    const code = `
      import fs from 'node:fs';
      const { openJournal } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/actors/event-recorder.js')).href)});
      const { newEvent } = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/events/schema.js')).href)});
      process.stdout.write('ready\\n');
      while (!fs.existsSync(process.env.GO)) await new Promise((r) => setTimeout(r, 2));
      const store = openJournal(process.env.JOURNAL);
      for (let i = 0; i < 50; i++) await store.append([newEvent('node-a', process.env.CID, 'update', { i })]);
      await store.close();
    `;
    const kids = [0, 1, 2, 3].map((i) => spawnModuleChild(code, { JOURNAL: p, CID: `w${i}`, GO: go }));
    await Promise.all(kids.map((k) => k.ready));
    writeFileSync(go, '');
    expect(await Promise.all(kids.map((k) => k.done))).toEqual(kids.map(() => ({ code: 0, stderr: '' })));
    expect(readQuarantine(p)).toHaveLength(1); // quarantined once, by whichever opened first
    const all = await track(openJournal(p)).read();
    expect(all.map((e) => e.seq)).toEqual([1, 2, ...Array.from({ length: 203 }, (_, i) => i + 4)]);
    for (let i = 0; i < 4; i++) {
      const mine = all.filter((e) => e.containerId === `w${i}`);
      expect(mine.map((e) => e.attributes.i)).toEqual(Array.from({ length: 50 }, (_, k) => k));
      expect(mine.map((e) => e.containerSeq)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
    }
  });
});
