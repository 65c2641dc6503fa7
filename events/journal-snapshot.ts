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
export const JOURNAL_SNAPSHOT_VERSION = 1;

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

/** What a snapshot file holds. */
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
  /** containerSeq of every container that has records (destroyed ones included), in order of first record. */
  containers: Array<[string, number]>;
  /** The projection the states are of, and the states (containers it forgot are absent). */
  projection?: string;
  states?: Array<[string, unknown]>;
}

/** Why a snapshot was not used (or `used`). */
export type SnapshotUse = 'used' | 'none' | 'unreadable' | 'mismatch' | 'other-projection' | 'tail-refused';

/** Where the snapshot of a journal lives. */
export function snapshotPathOf(journalPath: string): string {
  return `${journalPath}.snapshot`;
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const isInt = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Read a snapshot file; undefined when there is none, 'unreadable' when it is torn, damaged or not ours. */
export function readSnapshot(file: string): JournalSnapshot | 'unreadable' | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return 'unreadable';
  }
  const body = text.slice(9);
  if (text[8] !== ' ' || text.slice(0, 8) !== hex8(crc32(body))) return 'unreadable';
  let s: JournalSnapshot;
  try {
    s = JSON.parse(body) as JournalSnapshot;
  } catch {
    return 'unreadable';
  }
  const ok =
    typeof s === 'object' && s !== null && s.v === JOURNAL_SNAPSHOT_VERSION &&
    isInt(s.dev) && isInt(s.ino) && isInt(s.seq) && s.seq > 0 && isInt(s.lastOffset) && isInt(s.offset) && s.lastOffset < s.offset &&
    typeof s.lastCrc === 'string' && /^[0-9a-f]{8}$/.test(s.lastCrc) &&
    Array.isArray(s.marks) && s.marks.length === Math.ceil(s.seq / MARK_EVERY) && s.marks.every(isInt) && s.marks[0] === 0 &&
    Array.isArray(s.containers) && s.containers.every((c) => Array.isArray(c) && typeof c[0] === 'string' && isInt(c[1]) && c[1] > 0) &&
    (s.projection === undefined || (typeof s.projection === 'string' && Array.isArray(s.states) && s.states.every((x) => Array.isArray(x) && typeof x[0] === 'string')));
  return ok ? s : 'unreadable';
}

/**
 * Write a snapshot atomically (temporary file + rename; callers hold the journal's flock, so one fixed temporary
 * name serves, and one a crash left behind is simply overwritten). Failure only costs speed: it is swallowed.
 * Returns its size (0 when not written).
 */
export function writeSnapshot(file: string, s: JournalSnapshot): number {
  const tmp = `${file}.tmp`;
  try {
    const json = JSON.stringify(s);
    const buf = Buffer.from(`${hex8(crc32(json))} ${json}`);
    fs.writeFileSync(tmp, buf, { mode: 0o600 });
    fs.renameSync(tmp, file);
    return buf.length;
  } catch {
    fs.rmSync(tmp, { force: true });
    return 0;
  }
}
