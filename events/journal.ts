/**
 * The embedded event store: an append-only journal file in the state directory. One record a line,
 * `CRC32 JSON\n`; appends are batched per container, flock'ed (the daemon and CLI verbs share the file)
 * and fsync'd before they resolve. On open a torn last record (a crash mid-write) is detected by its
 * missing newline or CRC and truncated. Live subscribers hear this process's appends at once and other
 * processes' appends through a file watch.
 */
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { EventEmitter } from 'eventemitter3';
import { withFileLock } from '../kernel/file-lock.js';
import { type CordonEvent, type NewEvent, validateEvent } from './schema.js';
import { type AppendOptions, ConcurrencyError, type EventStore } from './store.js';

/** A record in the middle of the journal is damaged (not a torn tail): refuse rather than guess. */
export class JournalCorruptError extends Error {
  readonly path: string;
  readonly offset: number;

  constructor(path: string, offset: number, why: string) {
    super(`journal ${path} is damaged at byte ${offset}: ${why}`);
    this.name = 'JournalCorruptError';
    this.path = path;
    this.offset = offset;
  }
}

/** What opening the journal found. */
export interface JournalOpenReport {
  records: number;
  /** Bytes cut off a torn last record (0 when the tail was clean). */
  truncatedBytes: number;
}

const NL = 0x0a;
const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Encode one record line. */
export function encodeRecord(e: CordonEvent): Buffer {
  const json = JSON.stringify(e);
  return Buffer.from(`${hex8(crc32(json))} ${json}\n`);
}

/** The append-only journal store. */
export class JournalStore implements EventStore {
  readonly path: string;
  readonly openReport: JournalOpenReport;
  private readonly fd: number;
  private size = 0;
  private seq = 0;
  private readonly perContainer = new Map<string, number>();
  /** Byte offset of record seq (index seq - 1), so reads can start anywhere. */
  private readonly offsets: number[] = [];
  private readonly bus = new EventEmitter<{ event: [CordonEvent] }>();
  private watcher?: fs.FSWatcher;
  private closed = false;

  private constructor(path: string) {
    this.path = path;
    this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
    try {
      this.openReport = withFileLock(this.fd, () => this.load(true));
    } catch (e) {
      fs.closeSync(this.fd); // a refused open (damaged journal) must not leak the descriptor
      throw e;
    }
  }

  /** Open (or create) a journal; repairs a torn tail, throws JournalCorruptError for damage elsewhere. */
  static open(path: string): JournalStore {
    return new JournalStore(path);
  }

  /** Read records from this.size to the end. With `repair`, cut a torn tail (only under the lock). */
  private load(repair: boolean, emit = false): JournalOpenReport {
    const end = fs.fstatSync(this.fd).size;
    if (end <= this.size) return { records: this.seq, truncatedBytes: 0 };
    const buf = Buffer.alloc(end - this.size);
    fs.readSync(this.fd, buf, 0, buf.length, this.size);
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(NL, pos);
      const at = this.size + pos;
      const bad = (why: string): JournalOpenReport => {
        const rest = buf.length - pos;
        if (!repair) return { records: this.seq, truncatedBytes: 0 }; // maybe a writer mid-append: look later
        if (nl >= 0 && buf.indexOf(NL, nl + 1) >= 0) throw new JournalCorruptError(this.path, at, why);
        fs.ftruncateSync(this.fd, at);
        fs.fsyncSync(this.fd);
        return { records: this.seq, truncatedBytes: rest };
      };
      if (nl < 0) {
        const r = bad('record without its end');
        this.size = at;
        return r;
      }
      const line = buf.toString('utf8', pos, nl);
      const json = line.slice(9);
      if (line[8] !== ' ' || line.slice(0, 8) !== hex8(crc32(json))) {
        const r = bad('checksum mismatch');
        this.size = at;
        return r;
      }
      const e = validateEvent(JSON.parse(json));
      if (e.seq !== this.seq + 1) throw new JournalCorruptError(this.path, at, `sequence ${e.seq} follows ${this.seq}`);
      this.seq = e.seq;
      this.offsets.push(at);
      this.perContainer.set(e.containerId, e.containerSeq);
      if (emit) this.bus.emit('event', e);
      pos = nl + 1;
    }
    this.size = end;
    return { records: this.seq, truncatedBytes: 0 };
  }

  async append(events: NewEvent[], opts: AppendOptions = {}): Promise<CordonEvent[]> {
    if (events.length === 0) return [];
    const containerId = events[0].containerId;
    if (events.some((e) => e.containerId !== containerId)) throw new Error('append: one container per batch');
    const stored = withFileLock(this.fd, () => {
      this.load(false, true); // catch up with other writers first
      const current = this.perContainer.get(containerId) ?? 0;
      if (opts.expectedContainerSeq !== undefined && opts.expectedContainerSeq !== current) {
        throw new ConcurrencyError(containerId, opts.expectedContainerSeq, current);
      }
      const out = events.map((e, i) => validateEvent({ ...e, seq: this.seq + 1 + i, containerSeq: current + 1 + i }));
      const bufs = out.map(encodeRecord);
      const all = Buffer.concat(bufs);
      fs.writeSync(this.fd, all, 0, all.length);
      fs.fsyncSync(this.fd);
      let off = this.size;
      for (const b of bufs) {
        this.offsets.push(off);
        off += b.length;
      }
      this.size = off;
      this.seq += out.length;
      this.perContainer.set(containerId, current + out.length);
      return out;
    });
    for (const e of stored) this.bus.emit('event', e);
    return stored;
  }

  /** Append events numbered elsewhere (a restore from JetStream) as they are: they must continue this journal's seq. */
  async importEvents(events: CordonEvent[]): Promise<void> {
    if (events.length === 0) return;
    const stored = withFileLock(this.fd, () => {
      this.load(false, true);
      events.forEach((e, i) => {
        validateEvent(e);
        if (e.seq !== this.seq + 1 + i) throw new JournalCorruptError(this.path, this.size, `imported event ${e.seq} does not follow ${this.seq + i}`);
      });
      const bufs = events.map(encodeRecord);
      const all = Buffer.concat(bufs);
      fs.writeSync(this.fd, all, 0, all.length);
      fs.fsyncSync(this.fd);
      for (const [i, b] of bufs.entries()) {
        this.offsets.push(this.size);
        this.size += b.length;
        this.perContainer.set(events[i].containerId, events[i].containerSeq);
      }
      this.seq += events.length;
      return events;
    });
    for (const e of stored) this.bus.emit('event', e);
  }

  async read(fromSeq = 1): Promise<CordonEvent[]> {
    this.load(false, true);
    const first = Math.max(1, fromSeq);
    if (first > this.seq) return [];
    const start = this.offsets[first - 1];
    const buf = Buffer.alloc(this.size - start);
    fs.readSync(this.fd, buf, 0, buf.length, start);
    const out: CordonEvent[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const nl = buf.indexOf(NL, pos);
      out.push(JSON.parse(buf.toString('utf8', pos + 9, nl)) as CordonEvent);
      pos = nl + 1;
    }
    return out;
  }

  subscribe(listener: (e: CordonEvent) => void): () => void {
    this.bus.on('event', listener);
    if (!this.watcher && !this.closed) {
      // Other processes' appends: the file grows; read what is new.
      this.watcher = fs.watch(this.path, { persistent: false }, () => {
        if (!this.closed) this.load(false, true);
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
    this.closed = true;
    this.watcher?.close();
    this.bus.removeAllListeners();
    fs.closeSync(this.fd);
  }
}
