/**
 * The embedded event store: an append-only journal file in the state directory. One record a line,
 * `CRC32 JSON\n`; appends are batched per container, flock'ed (the daemon and CLI verbs share the file)
 * and fsync'd before they resolve (journal-append.ts: all of a batch or nothing). Damage found by an open or a
 * read under the lock is quarantined (journal-quarantine.ts): the damaged bytes copied aside and overwritten in
 * place by a marker record of the same length standing for their seqs; a torn tail (a crash mid-write) is
 * copied aside and cut. Live subscribers hear this process's appends at once and other processes' appends
 * through a file watch.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import { JOURNAL_SNAPSHOT_VERSION, type JournalProjection, MARK_EVERY, type SnapshotUse, readSnapshot, snapshotPathOf, snapshotSize, writeSnapshot } from './journal-snapshot.js';
import { JournalCorruptError, endsWithRecord, readFromMarks, scanJournal } from './journal-records.js';
import { type Line, eventLine, importLines, writeLines } from './journal-append.js';
import type { FileLock, JournalOpenOptions, JournalOpenReport, JournalOpenStats } from './journal-types.js';
import { ProjectedStates } from './journal-states.js';
import { type QuarantineEntry, describeEntry } from './journal-quarantine.js';
import { type Quarantined, quarantineItem, repairHint, repairJournal } from './journal-repair.js';
import { type CordonEvent, type NewEvent, validateEvent } from './schema.js';
import { type AppendOptions, ConcurrencyError, type EventStore } from './store.js';

export type { JournalProjection } from './journal-snapshot.js';
export type { FileLock, JournalOpenOptions, JournalOpenReport, JournalOpenStats } from './journal-types.js';
export { JournalCorruptError, encodeRecord } from './journal-records.js';
export { type QuarantineEntry, quarantinePathOf, readQuarantine } from './journal-quarantine.js';

/** The append-only journal store. */
export class JournalStore implements EventStore {
  readonly path: string;
  readonly openReport: JournalOpenReport;
  readonly openStats: JournalOpenStats = { snapshot: 'none', snapshotSeq: 0, parsedRecords: 0 };
  private readonly fd: number;
  private readonly snapshotPath: string;
  private readonly projection?: JournalProjection<unknown>;
  private readonly lock: FileLock;
  private readonly snapshotAfter: { records: number; bytes: number } | false;
  private size = 0;
  private seq = 0;
  private readonly perContainer = new Map<string, number>();
  /** The projection's state per container (see journal-states.ts). */
  private readonly states?: ProjectedStates;
  /** Sparse index: byte offset of record k·MARK_EVERY + 1, so reads can start anywhere without a scan. */
  private marks: number[] = [];
  /** Where the last record's line starts, and its CRC field (a snapshot's identity check). */
  private lastAt = 0;
  private lastCrc = '';
  /** The newest snapshot this process knows of: what it covers and its size. */
  private snap = { seq: 0, offset: 0, bytes: 0 };
  private readonly bus = new EventEmitter<{ event: [CordonEvent] }>();
  private watcher?: fs.FSWatcher;
  private closed = false;
  private inLock = false;
  /** The last failure of a load the file watch ran (reported once). */
  private watchFailure?: string;
  private readonly onWarning?: (message: string) => void;
  /** Damaged ranges this store quarantined (each also reported through onWarning). */
  readonly quarantines: QuarantineEntry[] = [];

  private constructor(path: string, opts: JournalOpenOptions) {
    this.path = path;
    this.snapshotPath = snapshotPathOf(path);
    this.projection = opts.projection;
    if (opts.projection) this.states = new ProjectedStates(opts.projection);
    this.lock = opts.lock;
    this.snapshotAfter = opts.snapshotAfter ?? { records: 1000, bytes: 1 << 20 };
    this.onWarning = opts.onWarning;
    try {
      this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new LifecycleError('EventLogFailed', `event log ${path}: cannot open it for appending: open: ${err.code ?? err.message}${err.code ? ` (${err.message})` : ''}`, {
        ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}),
        cause: e,
      });
    }
    try {
      this.openReport = this.locked(() => this.openLocked());
    } catch (e) {
      fs.closeSync(this.fd); // a refused open (damaged journal) must not leak the descriptor
      throw e;
    }
  }

  /**
   * Open (or create) a journal; quarantines damage (see journal-quarantine.ts) and cuts a torn tail; throws
   * JournalCorruptError only for damage too short to mark in place. A snapshot that matches the file lets it
   * read only the records after it.
   */
  static open(path: string, opts: JournalOpenOptions): JournalStore {
    return new JournalStore(path, opts);
  }

  /** Under the lock: start from the snapshot when it matches, read the rest (all of it when none matches). */
  private openLocked(): JournalOpenReport {
    const use = this.startFromSnapshot();
    this.openStats.snapshot = use;
    let report: JournalOpenReport;
    if (use === 'used' && !this.tailFollows()) {
      // The records after the snapshot do not follow it: trust only a full read.
      this.reset();
      this.openStats.snapshot = 'tail-refused';
    }
    report = this.load(true);
    this.maybeSnapshot();
    return report;
  }

  /** Take the state a snapshot describes if it is of this very file and prefix; returns why not otherwise. */
  private startFromSnapshot(): SnapshotUse {
    const s = readSnapshot(this.snapshotPath);
    if (s === undefined) return 'none';
    if (s === 'unreadable') return 'unreadable';
    if (this.projection && s.projection !== this.projection.name) return 'other-projection';
    const st = fs.fstatSync(this.fd);
    if (st.dev !== s.dev || st.ino !== s.ino || st.size < s.offset || s.offset - s.lastOffset > 1 << 24) return 'mismatch';
    if (!endsWithRecord(this.fd, s)) return 'mismatch';
    this.size = s.offset;
    this.seq = s.seq;
    this.marks = s.marks.slice();
    this.lastAt = s.lastOffset;
    this.lastCrc = s.lastCrc;
    for (const c of s.containers) {
      this.perContainer.set(c.id, c.seq);
      if (c.state !== undefined) this.states?.setEncoded(c.id, c.state);
    }
    this.snap = { seq: s.seq, offset: s.offset, bytes: snapshotSize(this.snapshotPath) };
    this.openStats.snapshotSeq = s.seq;
    return 'used';
  }

  /** Whether the first line after the snapshot continues its seq (damage there is quarantined by the load). */
  private tailFollows(): boolean {
    let ok = true;
    scanJournal(this.fd, { at: this.size, seq: this.seq }, fs.fstatSync(this.fd).size, (item) => {
      ok = item.kind !== 'gap' && !(item.kind === 'damage' && item.why.startsWith('sequence '));
      return false;
    });
    return ok;
  }

  private reset(): void {
    this.size = 0;
    this.seq = 0;
    this.marks = [];
    this.lastAt = 0;
    this.lastCrc = '';
    this.perContainer.clear();
    this.states?.clear();
    this.snap = { seq: 0, offset: 0, bytes: 0 };
    this.openStats.snapshotSeq = 0;
    this.openStats.parsedRecords = 0;
  }

  /** Take a line (a record, or a marker when `e` is absent) standing for seqs up to `last` into the in-memory state. */
  private note(e: CordonEvent | undefined, last: number, at: number, crc: string, lost?: Record<string, number>): void {
    this.seq = last;
    // marks[k]: the line holding or following seq k·MARK_EVERY + 1 (a marker may hold several, a gap skip some;
    // the file's first line, even a marker standing for no seq, is always marks[0]).
    if (at === 0 && this.marks.length === 0) this.marks.push(0);
    while (this.marks.length * MARK_EVERY + 1 <= last) this.marks.push(at);
    this.lastAt = at;
    this.lastCrc = crc;
    // A marker keeps the containerSeqs the damaged text showed: the next fact of such a container does not reuse one.
    for (const [id, n] of Object.entries(lost ?? {})) if (n > (this.perContainer.get(id) ?? 0)) this.perContainer.set(id, n);
    if (!e) return;
    this.perContainer.set(e.containerId, e.containerSeq);
    this.states?.apply(e);
  }

  /** Run `fn` under the journal's flock (once: a nested call runs it directly, the lock is not re-entrant). */
  private locked<T>(fn: () => T): T {
    if (this.inLock) return fn();
    return this.lock(this.fd, () => {
      this.inLock = true;
      try {
        return fn();
      } finally {
        this.inLock = false;
      }
    });
  }

  /** A quarantine this process did: kept, and reported once. */
  private quarantined(q: Quarantined | undefined): void {
    if (!q) return;
    this.quarantines.push(q.entry);
    this.onWarning?.(describeEntry(q.entry));
  }

  /**
   * Read records from this.size to the end. With `repair` (only under the lock): quarantine damage (a marker in
   * its place), cut a torn tail (copied aside too). Without: stop before damage — a tail may be a writer
   * mid-append; damage with good records after it is quarantined under the lock at once.
   */
  private load(repair: boolean, emit = false): JournalOpenReport {
    const end = fs.fstatSync(this.fd).size;
    if (end <= this.size) return { records: this.seq, truncatedBytes: 0 };
    let truncatedBytes = 0;
    let escalate = false;
    this.size = scanJournal(this.fd, { at: this.size, seq: this.seq }, end, (item) => {
      switch (item.kind) {
        case 'record':
          this.openStats.parsedRecords++;
          this.note(item.e, item.e.seq, item.at, item.crc);
          if (emit) this.bus.emit('event', item.e);
          return true;
        case 'marker':
          this.note(undefined, item.last, item.at, item.crc, item.m.containers);
          return true;
        case 'gap':
          // Whole records gone, no byte left to mark: taken as it is, noted once in the quarantine file.
          if (repair) this.quarantined(quarantineItem(this.fd, this.path, item, true) as Quarantined | undefined);
          return true;
        case 'damage': {
          if (!repair) {
            escalate = !item.tail && !this.inLock;
            return false;
          }
          const q = quarantineItem(this.fd, this.path, item, true);
          if (q === 'short') throw new JournalCorruptError(this.path, item.at, `${item.why}; ${item.len} damaged byte(s), too few for a quarantine marker: ${repairHint(this.path)}`);
          this.quarantined(q);
          if (item.tail) truncatedBytes = item.len;
          else if (q?.marker) this.note(undefined, item.last, item.at, q.marker.toString('latin1', 0, 8), q.lost);
          return !item.tail;
        }
      }
    });
    if (escalate) return this.locked(() => this.load(true, emit));
    return { records: this.seq, truncatedBytes };
  }

  /** Under the lock and caught up: write a snapshot when enough was added since the last one (see snapshotAfter). */
  private maybeSnapshot(): void {
    const after = this.snapshotAfter;
    if (!this.projection || !after) return;
    const bytes = this.size - this.snap.offset;
    // Also at least an eighth of the last snapshot's size, so writing them costs in proportion to what is appended.
    if ((this.seq - this.snap.seq >= after.records || bytes >= after.bytes) && bytes >= this.snap.bytes / 8) this.writeSnapshot();
  }

  private writeSnapshot(): void {
    if (!this.projection || this.seq === 0 || this.seq === this.snap.seq) return;
    const st = fs.fstatSync(this.fd);
    const bytes = writeSnapshot(this.snapshotPath, {
      v: JOURNAL_SNAPSHOT_VERSION,
      dev: st.dev,
      ino: st.ino,
      seq: this.seq,
      lastOffset: this.lastAt,
      lastCrc: this.lastCrc,
      offset: this.size,
      marks: this.marks,
      projection: this.projection.name,
      containers: [...this.perContainer].map(([id, seq]) => {
        const state = this.states?.encoded(id);
        return state === undefined ? { id, seq } : { id, seq, state };
      }),
    });
    if (bytes > 0) this.snap = { seq: this.seq, offset: this.size, bytes };
  }

  /**
   * Write a snapshot of everything appended so far (by any process) when at least `minRecords` came after the
   * last one, e.g. when the supervisor stops. Never throws: it is a cache.
   */
  snapshot(minRecords = 1): void {
    if (this.closed || !this.projection) return;
    try {
      this.locked(() => {
        this.load(true, true);
        if (this.seq - this.snap.seq >= minRecords) this.writeSnapshot();
      });
    } catch {
      // a failed snapshot costs the next open time, nothing else
    }
  }

  /** Whether this journal keeps (and snapshots) projection `p` (same name). */
  projects(p: JournalProjection<unknown>): boolean {
    return this.projection?.name === p.name;
  }

  /**
   * A container's state in projection `p` as of the last record this journal has taken in (kept current
   * before each event reaches subscribers); undefined when it has none or the journal keeps another projection.
   */
  projectedState<S>(p: JournalProjection<S>, id: string): S | undefined {
    return this.projects(p as JournalProjection<unknown>) ? (this.states?.get(id) as S | undefined) : undefined;
  }

  async append(events: NewEvent[], opts: AppendOptions = {}): Promise<CordonEvent[]> {
    if (events.length === 0) return [];
    const containerId = events[0].containerId;
    if (events.some((e) => e.containerId !== containerId)) throw new Error('append: one container per batch');
    const stored = this.locked(() => {
      // Catch up with other writers first; under the lock no writer is mid-record, so an incomplete last record is
      // a torn one (a writer killed mid-write) and is cut before anything is appended after it.
      this.load(true, true);
      const current = this.perContainer.get(containerId) ?? 0;
      if (opts.expectedContainerSeq !== undefined && opts.expectedContainerSeq !== current) {
        throw new ConcurrencyError(containerId, opts.expectedContainerSeq, current);
      }
      const out = events.map((e, i) => validateEvent({ ...e, seq: this.seq + 1 + i, containerSeq: current + 1 + i }));
      this.write(out.map(eventLine));
      return out;
    });
    for (const e of stored) this.bus.emit('event', e);
    return stored;
  }

  /**
   * Append events numbered elsewhere (a restore from JetStream) as they are: their seqs must rise after this
   * journal's; seqs missing between them (quarantined where they were published from) get a marker each.
   */
  async importEvents(events: CordonEvent[]): Promise<void> {
    if (events.length === 0) return;
    const stored = this.locked(() => {
      this.load(true, true);
      this.write(importLines(this.path, this.size, this.seq, events));
      return events;
    });
    for (const e of stored) this.bus.emit('event', e);
  }

  /** Under the lock and caught up: write lines with one fsync (all or nothing, see writeLines), take them in, maybe snapshot. */
  private write(lines: Line[]): void {
    writeLines(this.fd, this.path, this.size, lines);
    for (const l of lines) {
      this.note(l.e, l.last, this.size, l.buf.toString('latin1', 0, 8));
      this.size += l.buf.length;
    }
    this.maybeSnapshot();
  }

  /**
   * Stored events with fromSeq <= seq <= toSeq. Starts at the nearest index mark (never parses more than the
   * records since it); each record's CRC and seq are checked and markers stepped over. Damage met here (inside
   * a snapshotted head the open did not read) is quarantined under the lock, then the read is done again.
   */
  async read(fromSeq = 1, toSeq = Number.POSITIVE_INFINITY): Promise<CordonEvent[]> {
    this.load(false, true);
    const first = Math.max(1, fromSeq);
    const last = Math.min(this.seq, toSeq);
    if (first > last) return [];
    try {
      return readFromMarks(this.fd, this.path, this.marks, this.size, first, last);
    } catch (e) {
      if (!(e instanceof JournalCorruptError)) throw e;
      this.locked(() => repairJournal(this.fd, this.path, { cutTail: false, fixShort: false }, (entry) => this.quarantined({ entry })));
      return readFromMarks(this.fd, this.path, this.marks, this.size, first, last);
    }
  }

  subscribe(listener: (e: CordonEvent) => void): () => void {
    this.bus.on('event', listener);
    if (!this.watcher && !this.closed) {
      // Other processes' appends: the file grows; read what is new.
      this.watcher = fs.watch(this.path, { persistent: false }, () => {
        if (this.closed) return;
        try {
          this.load(false, true);
        } catch (e) {
          // Damage it could not quarantine (too short for a marker, no room for the quarantine file): said once
          // per cause; the next verb under the lock meets it too and fails naming it.
          const message = (e as Error).message;
          if (message !== this.watchFailure) this.onWarning?.(message);
          this.watchFailure = message;
        }
      });
      this.watcher.on('error', () => {});
    }
    return () => {
      this.bus.off('event', listener);
      if (this.bus.listenerCount('event') === 0) {
        this.watcher?.close();
        this.watcher = undefined;
      }
    };
  }

  lastSeq(): number {
    return this.seq;
  }

  containerSeq(containerId: string): number {
    return this.perContainer.get(containerId) ?? 0;
  }

  /** Container ids that have events. */
  containers(): string[] {
    return [...this.perContainer.keys()];
  }

  /** Pick up appends by other processes now (a watch event may lag). */
  refresh(): void {
    this.load(false, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    this.bus.removeAllListeners();
    fs.closeSync(this.fd);
  }
}
