/**
 * The journal's records on disk: one `CRC32 JSON\n` line each (JSON has no raw newline, so every newline
 * ends a record), the error for damage, and the one scanner every reader goes through. A line is an event
 * (seq one more than the line before), a quarantine marker (`{"quarantined":[from,to],...}`, padded with
 * spaces: it took the place of damaged bytes and stands for the seqs they held, possibly none), or damage.
 * Consecutive damaged lines form one damaged range, which ends where a good line whose seq continues begins.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { type JournalSnapshot, MARK_EVERY } from './journal-snapshot.js';
import { type CordonEvent, validateEvent } from './schema.js';

/** A record in the middle of the journal is damaged and could not be quarantined: refuse rather than guess. */
export class JournalCorruptError extends LifecycleError {
  readonly path: string;
  readonly offset: number;

  constructor(path: string, offset: number, why: string) {
    super('EventLogCorrupt', `journal ${path} is damaged at byte ${offset}: ${why}`);
    this.name = 'JournalCorruptError';
    this.path = path;
    this.offset = offset;
  }
}

const NL = 0x0a;
/** Bytes read at a time by the scanner: 64 KiB first (a read of a few records), doubling up to 1 MiB. */
const FIRST_CHUNK = 64 << 10;
const READ_CHUNK = 1 << 20;

/** A CRC as the journal writes it: 8 lower-case hex digits. */
export const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Encode one record line. */
export function encodeRecord(e: CordonEvent): Buffer {
  const json = JSON.stringify(e);
  return Buffer.from(`${hex8(crc32(json))} ${json}\n`);
}

/** A line's JSON with its CRC field: `CRC32 JSON\n`. */
export function encodeLine(json: string): Buffer {
  return Buffer.from(`${hex8(crc32(json))} ${json}\n`);
}

/** What a quarantine marker says: the seqs it stands for, and the last containerSeq of containers it knows lost. */
export interface MarkerBody {
  quarantined: [number, number];
  containers?: Record<string, number>;
  reason?: string;
}

/** A line as read: an event, a marker, or damage (why). */
export type ParsedLine =
  | { kind: 'record'; e: CordonEvent; crc: string; first: number; last: number }
  | { kind: 'marker'; m: MarkerBody; crc: string; first: number; last: number }
  | { kind: 'bad'; why: string };

const isSeq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Parse one line (without its newline): CRC, JSON, then a marker's shape or the event schema. */
export function parseLine(line: string): ParsedLine {
  const json = line.slice(9);
  const crc = line.slice(0, 8);
  if (line[8] !== ' ' || crc !== hex8(crc32(json))) return { kind: 'bad', why: 'checksum mismatch' };
  let x: unknown;
  try {
    x = JSON.parse(json);
  } catch (e) {
    return { kind: 'bad', why: `not JSON (${(e as Error).message})` };
  }
  if (typeof x === 'object' && x !== null && 'quarantined' in x) {
    const q = (x as MarkerBody).quarantined;
    if (!Array.isArray(q) || q.length !== 2 || !isSeq(q[0]) || !isSeq(q[1]) || q[0] < 1 || q[1] < q[0] - 1) return { kind: 'bad', why: 'malformed quarantine marker' };
    return { kind: 'marker', m: x as MarkerBody, crc, first: q[0], last: q[1] };
  }
  try {
    const e = validateEvent(x);
    return { kind: 'record', e, crc, first: e.seq, last: e.seq };
  } catch (err) {
    return { kind: 'bad', why: (err as Error).message };
  }
}

/** One item the scanner finds, `len` bytes at byte `at`. */
export type ScanItem =
  | { kind: 'record'; at: number; len: number; e: CordonEvent; crc: string }
  | { kind: 'marker'; at: number; len: number; m: MarkerBody; crc: string; first: number; last: number }
  /** Seqs first..last are missing between two good lines, and no byte stands for them (records deleted whole). */
  | { kind: 'gap'; at: number; len: 0; first: number; last: number }
  /**
   * Damaged bytes: the seqs they must have held (first..last; none when last < first), why the first line is bad,
   * and whether it runs to the end (`tail`: no good line follows; then `last` is unknown and set to first - 1).
   */
  | { kind: 'damage'; at: number; len: number; first: number; last: number; why: string; tail: boolean };

/**
 * Read lines from byte `from.at` (a line start, after seq `from.seq`) up to byte `end`, in chunks, and hand each
 * item to `visit` (return false to stop). Returns the offset where it stopped (after the last item visited).
 */
export function scanJournal(fd: number, from: { at: number; seq: number; loose?: boolean }, end: number, visit: (item: ScanItem) => boolean | void): number {
  let buf = Buffer.alloc(0);
  let bufAt = from.at; // file offset of buf[0]
  let seq = from.seq;
  let at = from.at;
  // `loose`: the first line may be a marker that began before seq `from.seq` (an index mark inside its range).
  let loose = from.loose === true;
  let chunk = FIRST_CHUNK;
  /** The line starting at `pos` (file offset): its end (offset of its newline), or -1 at the end of the file. */
  const lineEnd = (pos: number, keep: number): number => {
    for (;;) {
      const nl = buf.indexOf(NL, pos - bufAt);
      if (nl >= 0) return bufAt + nl;
      const next = bufAt + buf.length;
      const want = Math.min(chunk, end - next);
      if (want <= 0) return -1;
      chunk = Math.min(chunk * 2, READ_CHUNK);
      const more = Buffer.allocUnsafe(want);
      const n = fs.readSync(fd, more, 0, want, next);
      if (n <= 0) return -1;
      buf = Buffer.concat([buf.subarray(keep - bufAt), more.subarray(0, n)]);
      bufAt = keep;
    }
  };
  const lineAt = (pos: number, nl: number): ParsedLine => parseLine(buf.toString('utf8', pos - bufAt, nl - bufAt));
  /**
   * Whether good line `p` (ending at `nl`) continues seq `after`: its first seq is beyond it, and a jump (seqs
   * missing) is not believed when the next line is a good one that goes back behind `p` — so one stray line with
   * a high seq is damage, not a reason to take every record after it for damage.
   */
  const continues = (p: ParsedLine, nl: number, after: number, looseFirst = false): boolean => {
    if (p.kind === 'bad' || !(p.first > after || (looseFirst && p.last > after))) return false;
    if (p.first <= after + 1) return true;
    const nl2 = lineEnd(nl + 1, at);
    if (nl2 < 0) return true;
    const q = lineAt(nl + 1, nl2);
    return q.kind === 'bad' || q.first > p.last;
  };
  while (at < end) {
    const nl = lineEnd(at, at);
    if (nl < 0) {
      if (visit({ kind: 'damage', at, len: end - at, first: seq + 1, last: seq, why: 'record without its end', tail: true }) === false) return at;
      return end;
    }
    const p = lineAt(at, nl);
    const ok = continues(p, nl, seq, loose);
    loose = false;
    if (p.kind !== 'bad' && ok) {
      if (p.first > seq + 1 && visit({ kind: 'gap', at, len: 0, first: seq + 1, last: p.first - 1 }) === false) return at;
      const len = nl + 1 - at;
      const item: ScanItem = p.kind === 'record' ? { kind: 'record', at, len, e: p.e, crc: p.crc } : { kind: 'marker', at, len, m: p.m, crc: p.crc, first: p.first, last: p.last };
      if (visit(item) === false) return at;
      seq = p.last;
      at = nl + 1;
      continue;
    }
    // Damage: it runs over every line up to the next good one whose seq continues (or to the end).
    const why = p.kind === 'bad' ? p.why : `sequence ${p.first} follows ${seq}`;
    let next = nl + 1;
    let found: ParsedLine | undefined;
    while (next < end) {
      const nl2 = lineEnd(next, at);
      if (nl2 < 0) break;
      const q = lineAt(next, nl2);
      if (continues(q, nl2, seq)) {
        found = q;
        break;
      }
      next = nl2 + 1;
    }
    if (!found) {
      if (visit({ kind: 'damage', at, len: end - at, first: seq + 1, last: seq, why, tail: true }) === false) return at;
      return end;
    }
    if (visit({ kind: 'damage', at, len: next - at, first: seq + 1, last: (found as { first: number }).first - 1, why, tail: false }) === false) return at;
    seq = (found as { first: number }).first - 1;
    at = next;
  }
  return at;
}

/**
 * Records first..last, reading from `from.at` (the start of the line holding or following seq `from.seq`, e.g.
 * an index mark) up to byte `from.end`. Markers and gaps are stepped over; damage throws JournalCorruptError,
 * it is never returned.
 */
export function readRecords(fd: number, path: string, from: { at: number; seq: number; end: number }, first: number, last: number): CordonEvent[] {
  const out: CordonEvent[] = [];
  let damage: ScanItem | undefined;
  scanJournal(fd, { at: from.at, seq: from.seq - 1, loose: true }, from.end, (item) => {
    if (item.kind === 'damage') {
      damage = item;
      return false;
    }
    if (item.kind !== 'record') return true;
    if (item.e.seq > last) return false;
    if (item.e.seq >= first) out.push(item.e);
    return true;
  });
  if (damage) throw new JournalCorruptError(path, damage.at, (damage as { why: string }).why);
  return out;
}

/**
 * Records first..last of a journal whose sparse index is `marks` (marks[k]: the line holding or following seq
 * k·markEvery + 1), read up to byte `end` from the nearest mark. A mark inside a range a marker replaced since is
 * no longer a line's start: an earlier one is used.
 */
export function readFromMarks(fd: number, path: string, marks: number[], end: number, first: number, last: number, markEvery = MARK_EVERY): CordonEvent[] {
  let k = Math.floor((first - 1) / markEvery);
  while (k > 0 && !startsLine(fd, marks[k])) k--;
  return readRecords(fd, path, { at: marks[k], seq: k * markEvery + 1, end }, first, last);
}

/** Whether byte `at` starts a line (the file's start, or just after a newline). */
export function startsLine(fd: number, at: number): boolean {
  if (at === 0) return true;
  const b = Buffer.alloc(1);
  return fs.readSync(fd, b, 0, 1, at - 1) === 1 && b[0] === NL;
}

/**
 * Whether the file's first `snap.offset` bytes end with the very line the snapshot names: a newline (or the
 * file's start) before it, its CRC field (valid), its seq (a record's, or the last a marker stands for).
 */
export function endsWithRecord(fd: number, snap: Pick<JournalSnapshot, 'offset' | 'lastOffset' | 'lastCrc' | 'seq'>): boolean {
  const buf = Buffer.alloc(snap.offset - snap.lastOffset + 1);
  const from = snap.lastOffset - 1;
  if (from >= 0) fs.readSync(fd, buf, 0, buf.length, from);
  else fs.readSync(fd, buf, 1, buf.length - 1, 0);
  if ((from >= 0 && buf[0] !== NL) || buf.indexOf(NL, 1) !== buf.length - 1) return false;
  const line = buf.toString('utf8', 1, buf.length - 1);
  if (line.slice(0, 8) !== snap.lastCrc) return false;
  const p = parseLine(line);
  return p.kind !== 'bad' && p.last === snap.seq;
}
