/**
 * The journal's snapshot: a cache, next to the journal, of what reading its first `offset` bytes yields —
 * the last seq, every container's containerSeq, a sparse seq → byte offset index and, when the writer folded
 * the records through a projection (the recorder's lifecycle states), that projection's per-container
 * states. Opening the journal then reads only the records after it. One `CRC32 JSON` line, written to a
 * temporary file and renamed over the old one, so a reader sees a whole snapshot or none; a missing, torn,
 * stale or mismatched one is ignored (the journal is read in full), so it can change speed but never results.
 */
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import type { CordonEvent } from './schema.js';

/** Format version of the snapshot file. */
export const JOURNAL_SNAPSHOT_VERSION = 2;

/** Records between two entries of the sparse seq → offset index (entry k is the offset of record k·MARK_EVERY + 1). */
export const MARK_EVERY = 256;

/**
 * A per-container fold of the journal's records that the journal keeps and snapshots. `apply` must be pure
 * and deterministic; returning undefined forgets the container (its containerSeq is kept by the journal).
 */
export interface JournalProjection<S> {
  /** Names the fold and its version: states snapshotted under another name are not used. */
  readonly name: string;
  apply(prev: S | undefined, e: CordonEvent): S | undefined;
}

/** What a snapshot file holds (a header line, then one line per container). */
export interface JournalSnapshot {
  v: number;
  /** Identity of the journal file it was taken of. */
  dev: number;
  ino: number;
  /** The last record covered, where its line starts, and its CRC field. */
  seq: number;
  lastOffset: number;
  lastCrc: string;
  /** Bytes of the journal covered (the end of record `seq`). */
  offset: number;
  /** Sparse index: marks[k] is the byte offset of record k·MARK_EVERY + 1. */
  marks: number[];
  /** The projection the states are of (none: the writer kept no states). */
  projection?: string;
  /**
   * Every container that has records (destroyed ones included), in order of first record: its containerSeq and
   * its projected state as JSON text (absent when the projection forgot it), decoded only when asked for.
   */
  containers: SnapshotContainer[];
}

/** One container's line of a snapshot. */
export interface SnapshotContainer {
  id: string;
  seq: number;
  state?: string;
}

/** Why a snapshot was not used (or `used`). */
export type SnapshotUse = 'used' | 'none' | 'unreadable' | 'mismatch' | 'other-projection' | 'tail-refused';

/** Where the snapshot of a journal lives. */
export function snapshotPathOf(journalPath: string): string {
  return `${journalPath}.snapshot`;
}

/** The snapshot file's size (0 when there is none). */
export function snapshotSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const isInt = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * Read a snapshot file; undefined when there is none, 'unreadable' when it is torn, damaged or not ours.
 * Format: `CRC32 ` (of all that follows), a header line of JSON, then per container
 * `containerSeq JSON-id TAB state-JSON-or-nothing` lines (JSON has no raw TAB or newline, so they split cleanly).
 */
export function readSnapshot(file: string): JournalSnapshot | 'unreadable' | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  if (buf.length < 10 || buf[8] !== 0x20 || buf.toString('latin1', 0, 8) !== hex8(crc32(buf.subarray(9)))) return 'unreadable';
  const text = buf.toString('utf8', 9);
  try {
    const headEnd = text.indexOf('\n');
    const s = JSON.parse(text.slice(0, headEnd)) as JournalSnapshot & { count?: unknown };
    const ok =
      typeof s === 'object' && s !== null && s.v === JOURNAL_SNAPSHOT_VERSION &&
      isInt(s.dev) && isInt(s.ino) && isInt(s.seq) && s.seq > 0 && isInt(s.lastOffset) && isInt(s.offset) && s.lastOffset < s.offset &&
      typeof s.lastCrc === 'string' && /^[0-9a-f]{8}$/.test(s.lastCrc) && isInt(s.count) &&
      Array.isArray(s.marks) && s.marks.length === Math.ceil(s.seq / MARK_EVERY) && s.marks.every(isInt) && s.marks[0] === 0 &&
      (s.projection === undefined || typeof s.projection === 'string');
    if (!ok) return 'unreadable';
    const containers: SnapshotContainer[] = [];
    let pos = headEnd + 1;
    while (pos < text.length) {
      const nl = text.indexOf('\n', pos);
      const sp = text.indexOf(' ', pos);
      const tab = text.indexOf('\t', sp);
      if (nl < 0 || sp < 0 || tab < 0 || tab > nl) return 'unreadable';
      const seq = Number(text.slice(pos, sp));
      const rawId = text.slice(sp + 1, tab);
      const id = rawId.includes('\\') ? (JSON.parse(rawId) as unknown) : rawId.slice(1, -1);
      if (!isInt(seq) || seq === 0 || typeof id !== 'string' || rawId[0] !== '"' || rawId.at(-1) !== '"') return 'unreadable';
      containers.push(tab + 1 < nl ? { id, seq, state: text.slice(tab + 1, nl) } : { id, seq });
      pos = nl + 1;
    }
    if (containers.length !== s.count) return 'unreadable';
    delete s.count;
    return { ...s, containers };
  } catch {
    return 'unreadable';
  }
}

/**
 * Write a snapshot atomically (temporary file + rename; callers hold the journal's flock, so one fixed temporary
 * name serves, and one a crash left behind is simply overwritten). Failure only costs speed: it is swallowed.
 * Returns its size (0 when not written).
 */
export function writeSnapshot(file: string, s: JournalSnapshot): number {
  const tmp = `${file}.tmp`;
  try {
    const { containers, ...head } = s;
    const parts: string[] = [JSON.stringify({ ...head, count: containers.length }), '\n'];
    for (const c of containers) parts.push(`${c.seq} ${JSON.stringify(c.id)}\t${c.state ?? ''}\n`);
    const body = Buffer.from(parts.join(''));
    const buf = Buffer.concat([Buffer.from(`${hex8(crc32(body))} `), body]);
    fs.writeFileSync(tmp, buf, { mode: 0o600 });
    fs.renameSync(tmp, file);
    return buf.length;
  } catch {
    fs.rmSync(tmp, { force: true });
    return 0;
  }
}
