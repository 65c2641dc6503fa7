/**
 * Appending lines to the journal: all of a batch or nothing. A write that stops short is continued; one that
 * fails (a full disk, an I/O error) or an fsync that fails is taken back — the file cut to where it was — and
 * throws EventLogFailed naming the journal and errno, so no torn record is left for a later writer to build on.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import { JournalCorruptError, encodeLine, encodeRecord } from './journal-records.js';
import { type CordonEvent, validateEvent } from './schema.js';

/** A line to append: an event (absent for a marker), its bytes, the last seq it stands for. */
export interface Line {
  e?: CordonEvent;
  buf: Buffer;
  last: number;
}

/** The line of a numbered event. */
export function eventLine(e: CordonEvent): Line {
  return { e, buf: encodeRecord(e), last: e.seq };
}

/**
 * The lines that import `events` (numbered elsewhere) after seq `seq`: their seqs must rise; each run of seqs
 * missing between them gets a marker (those the publishing journal quarantined).
 */
export function importLines(path: string, size: number, seq: number, events: CordonEvent[]): Line[] {
  const lines: Line[] = [];
  for (const e of events) {
    validateEvent(e);
    if (e.seq <= seq) throw new JournalCorruptError(path, size, `imported event ${e.seq} does not follow ${seq}`);
    if (e.seq > seq + 1) lines.push({ buf: encodeLine(JSON.stringify({ quarantined: [seq + 1, e.seq - 1], reason: 'missing from the imported history' })), last: e.seq - 1 });
    lines.push(eventLine(e));
    seq = e.seq;
  }
  return lines;
}

/**
 * Write `lines` at the end of the journal (`fd`, O_APPEND, `size` bytes long and locked) with one fsync. On
 * failure the file is cut back to `size` and EventLogFailed thrown.
 */
export function writeLines(fd: number, path: string, size: number, lines: Line[]): void {
  const all = Buffer.concat(lines.map((l) => l.buf));
  try {
    for (let done = 0; done < all.length; ) {
      const n = fs.writeSync(fd, all, done, all.length - done);
      if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO', errno: -5, syscall: 'write' });
      done += n;
    }
    fs.fsyncSync(fd);
  } catch (e) {
    throw appendFailed(fd, path, size, lines.filter((l) => l.e).length, e);
  }
}

/** Cut what a failed append wrote (so the next record follows the last whole one) and say why it failed. */
function appendFailed(fd: number, path: string, size: number, records: number, e: unknown): LifecycleError {
  const err = e as NodeJS.ErrnoException;
  let undone = '';
  try {
    fs.ftruncateSync(fd, size);
    fs.fsyncSync(fd);
  } catch (t) {
    // Left as a torn tail: the next writer (under the lock) or open quarantines and cuts it.
    undone = `; cutting the partial record failed too (${(t as Error).message})`;
  }
  const what = err.code ? `${err.syscall ?? 'write'}: ${err.code}` : String(err.message ?? e);
  return new LifecycleError('EventLogFailed', `event log ${path}: ${records} record(s) not appended: ${what}${err.message && err.code ? ` (${err.message})` : ''}${undone}`, {
    ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}),
    cause: e,
  });
}
