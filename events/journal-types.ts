/**
 * The journal store's options and reports (events/journal.ts).
 */
import type { JournalProjection, SnapshotUse } from './journal-snapshot.js';

/** What opening the journal found. */
export interface JournalOpenReport {
  records: number;
  /** Bytes cut off a torn last record (0 when the tail was clean). */
  truncatedBytes: number;
}

/**
 * An exclusive whole-file lock held while `fn` runs (flock(2) in the kernel layer, given by the opener):
 * the daemon and CLI verbs of one host append to one journal file.
 */
export type FileLock = <T>(fd: number, fn: () => T) => T;

/** Options of JournalStore.open. */
export interface JournalOpenOptions {
  /** The lock that serialises writers across processes (actors/ passes the kernel's flock). */
  lock: FileLock;
  /** A per-container fold the journal keeps current and snapshots (the recorder's lifecycle states). */
  projection?: JournalProjection<unknown>;
  /**
   * When to write a snapshot (only with a projection): after an append or an open that leaves at least this
   * many records or bytes after the last one (default 1,000 records or 1 MiB); false: never.
   */
  snapshotAfter?: { records: number; bytes: number } | false;
  /** Hears each quarantine this store does (damaged bytes copied aside and marked, a torn tail cut), once. */
  onWarning?: (message: string) => void;
}

/** How an open went: whether a snapshot let it skip the journal's head, and how many records it parsed. */
export interface JournalOpenStats {
  snapshot: SnapshotUse;
  /** Seq the snapshot covered (0 when none was used). */
  snapshotSeq: number;
  /** Records read, checked and validated by the open (the tail after the snapshot, or all of them). */
  parsedRecords: number;
}

