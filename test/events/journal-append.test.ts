/**
 * Appends are all or nothing: a write that stops short anywhere in a batch is continued; one that then fails,
 * or ENOSPC at every byte of a batch (and on a real full filesystem, a small tmpfs), leaves the file exactly as
 * it was, rejects with EventLogFailed naming the journal and errno, and the next append builds on whole records.
 */
import { execFileSync } from 'node:child_process';
import fs, { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openJournal } from '../../actors/event-recorder.js';
import { JournalStore, encodeRecord } from '../../events/journal.js';
import { type NewEvent, newEvent } from '../../events/schema.js';
import { LifecycleError } from '../../errors/index.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-jappend-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(tmp, { recursive: true, force: true });
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
  vi.restoreAllMocks();
  for (const s of opened.splice(0)) await s.close();
});

const ev = (id: string, action: NewEvent['action'] = 'update', attributes: Record<string, unknown> = {}) => newEvent('node-a', id, action, attributes);
/** The journal's descriptor (the spies fail only its writes). */
const fdOf = (s: JournalStore) => (s as unknown as { fd: number }).fd;
const realWrite = fs.writeSync.bind(fs) as (fd: number, buf: Buffer, off: number, len: number, pos?: number | null) => number;

describe('short writes', () => {
  it('a write that stops short anywhere in a batch is continued: the records land whole', async () => {
    for (const cutAt of [1, 8, 9, 100, 'record', 'record+1', 'end-1'] as const) {
      const p = journalPath();
      const s = track(openJournal(p));
      await s.append([ev('a', 'create')]);
      const batch = [ev('a', 'start'), ev('a', 'pause'), ev('a', 'resume')];
      const recLen = encodeRecord({ ...batch[0], seq: 2, containerSeq: 2 }).length;
      let calls = 0;
      vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
        if (fd !== fdOf(s) || calls++ > 0) return realWrite(fd, buf, off, len);
        const k = cutAt === 'record' ? recLen : cutAt === 'record+1' ? recLen + 1 : cutAt === 'end-1' ? len - 1 : cutAt;
        return realWrite(fd, buf, off, Math.min(k, len));
      }) as typeof fs.writeSync);
      const stored = await s.append(batch);
      vi.restoreAllMocks();
      expect(calls, String(cutAt)).toBeGreaterThan(1); // it was cut short and continued
      expect(stored.map((e) => e.seq)).toEqual([2, 3, 4]);
      const fresh = track(openJournal(p));
      expect(fresh.quarantines).toEqual([]);
      expect(await fresh.read()).toEqual([...(await s.read(1, 1)), ...stored]);
    }
  });

  it('a write that stops short and then returns 0 fails the append: the file is cut back, the next writer builds on whole records', async () => {
    const p = journalPath();
    const s = track(openJournal(p));
    await s.append([ev('a', 'create')]);
    const before = readFileSync(p);
    let calls = 0;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
      if (fd !== fdOf(s)) return realWrite(fd, buf, off, len);
      return calls++ === 0 ? realWrite(fd, buf, off, 50) : 0;
    }) as typeof fs.writeSync);
    const err = await s.append([ev('a', 'start')]).catch((e: unknown) => e);
    vi.restoreAllMocks();
    expect(err).toBeInstanceOf(LifecycleError);
    expect((err as LifecycleError).code).toBe('EventLogFailed');
    expect((err as LifecycleError).message).toBe(`event log ${p}: 1 record(s) not appended: write: EIO (write returned 0 bytes)`);
    expect(readFileSync(p).equals(before)).toBe(true);
    const other = track(openJournal(p));
    expect(other.openReport).toEqual({ records: 1, truncatedBytes: 0 });
    expect((await other.append([ev('a', 'start')]))[0].seq).toBe(2);
    expect((await s.append([ev('a', 'pause')]))[0].seq).toBe(3);
    expect((await track(openJournal(p)).read()).map((e) => [e.seq, e.containerSeq])).toEqual([[1, 1], [2, 2], [3, 3]]);
  });
});

describe('ENOSPC', () => {
  it('at every byte of a batch: the append rejects naming the journal and errno, the file is as before, the next append and reads work', async () => {
    const p = journalPath();
    const s = track(openJournal(p));
    await s.append([ev('a', 'create')]);
    const batchOf = () => [ev('a', 'update', { i: 1 }), ev('a', 'update', { i: 2 }), ev('a', 'update', { i: 3 })];
    // The batch's size after seq `seq` (container a is the only one: its containerSeq is the seq).
    const sizeAfter = (seq: number) => Buffer.concat(batchOf().map((e, i) => encodeRecord({ ...e, seq: seq + 1 + i, containerSeq: seq + 1 + i }))).length;
    let positions = 0;
    let failAt = 0;
    let written = 0;
    let failing = true;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
      if (fd !== fdOf(s) || !failing) return realWrite(fd, buf, off, len);
      if (written >= failAt) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      const k = realWrite(fd, buf, off, Math.min(len, failAt - written));
      written += k;
      return k;
    }) as typeof fs.writeSync);
    for (failAt = 0; failAt < sizeAfter(s.lastSeq()); failAt++) {
      positions++;
      written = 0;
      const before = readFileSync(p);
      const seq = s.lastSeq();
      const err = await s.append(batchOf()).catch((e: unknown) => e);
      expect(err, `at byte ${failAt}`).toBeInstanceOf(LifecycleError);
      expect((err as LifecycleError).code).toBe('EventLogFailed');
      expect((err as LifecycleError).message).toContain(`event log ${p}: 3 record(s) not appended: write: ENOSPC`);
      expect((err as LifecycleError).errno).toBe(28);
      expect(readFileSync(p).equals(before), `at byte ${failAt}`).toBe(true);
      expect(s.lastSeq()).toBe(seq);
      // Room again: the next append lands right after, and reads are intact.
      failing = false;
      const ok = await s.append(batchOf());
      expect(ok.map((e) => e.seq)).toEqual([seq + 1, seq + 2, seq + 3]);
      expect((await s.read(seq - 2)).map((e) => e.seq)).toEqual([seq - 2, seq - 1, seq, seq + 1, seq + 2, seq + 3].filter((x) => x > 0));
      failing = true;
    }
    vi.restoreAllMocks();
    expect(positions).toBeGreaterThan(600); // every byte of a three-record batch
    const fresh = track(openJournal(p));
    expect(fresh.openReport.truncatedBytes).toBe(0);
    expect(fresh.quarantines).toEqual([]);
    const all = await fresh.read();
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.map((e) => e.containerSeq)).toEqual(all.map((_, i) => i + 1));
  });

  it('on a real full filesystem (a small tmpfs)', async () => {
    const dir = mkdtempSync(path.join(tmp, 'full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
    mounts.push(dir);
    const p = path.join(dir, 'events.journal');
    const s = track(openJournal(p));
    await s.append([ev('a', 'create')]);
    // End the journal on a page boundary, so the next record needs a page of its own (as on a full disk).
    const base = encodeRecord({ ...ev('pad', 'error', { message: '' }), seq: 2, containerSeq: 1 }).length;
    let target = 4096 - (statSync(p).size % 4096);
    if (target < base) target += 4096;
    await s.append([ev('pad', 'error', { message: 'x'.repeat(target - base) })]);
    expect(statSync(p).size % 4096).toBe(0);
    const filler = path.join(dir, 'filler');
    const fd = openSync(filler, 'w');
    for (let chunk = 64 << 10; chunk > 0; ) {
      try {
        writeSync(fd, Buffer.alloc(chunk, 0x55));
      } catch {
        chunk >>= 1;
      }
    }
    closeSync(fd);
    const before = readFileSync(p);
    const err = await s.append([ev('a', 'start'), ev('a', 'pause')]).catch((e: unknown) => e);
    expect((err as LifecycleError).code).toBe('EventLogFailed');
    expect((err as LifecycleError).message).toContain(`event log ${p}: 2 record(s) not appended: write: ENOSPC`);
    expect((err as LifecycleError).errno).toBe(28);
    expect(readFileSync(p).equals(before)).toBe(true);
    rmSync(filler);
    expect((await s.append([ev('a', 'start')]))[0].seq).toBe(3);
    expect((await track(openJournal(p)).read()).map((e) => e.seq)).toEqual([1, 2, 3]);
  });
});
