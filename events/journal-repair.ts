/**
 * Checking and repairing a whole journal file: `cordon journal check` reads every line (CRC, seq continuity,
 * schema) and reports what it found without changing anything; `cordon journal repair` quarantines every
 * damaged range (journal-quarantine.ts), also those too short for a marker, and cuts a torn tail. Both run
 * under the journal's flock. A read that meets damage the open did not (inside the snapshotted head) runs the
 * repair without its last resorts.
 */
import fs from 'node:fs';
import { JournalCorruptError, type ScanItem, encodeLine, endsWithRecord, scanJournal } from './journal-records.js';
import {
  type DamagedRange, type QuarantineEntry, appendQuarantine, cutTail, encodeMarker, entryOf, gapNoted, markInPlace, quarantinePathOf, readQuarantine, writeAt,
} from './journal-quarantine.js';
import { readSnapshot, snapshotPathOf } from './journal-snapshot.js';
import path from 'node:path';

/** How repairJournal goes about it. */
export interface RepairOptions {
  /** Cut a damaged tail (copied aside first); else it is left for the next writer's open. */
  cutTail: boolean;
  /**
   * Fix ranges too short for a marker: one holding no event is absorbed as spaces into the JSON of the line before
   * it (or after it, at the file's start); one holding events is quarantined together with the line before it.
   * Without it such a range throws JournalCorruptError pointing at `cordon journal repair`.
   */
  fixShort: boolean;
}

/** What a repair did. */
export interface RepairResult {
  entries: QuarantineEntry[];
  truncatedBytes: number;
}

/** The hint a refusal gives: the command that repairs the journal. */
export function repairHint(journalPath: string): string {
  return `run "cordon --root ${path.dirname(journalPath)} journal repair"`;
}

/** Read the line that starts at `at` (without its newline). */
function lineAt(fd: number, at: number): Buffer {
  const chunks: Buffer[] = [];
  for (let pos = at; ; ) {
    const b = Buffer.alloc(64 << 10);
    const n = fs.readSync(fd, b, 0, b.length, pos);
    if (n <= 0) return Buffer.concat(chunks);
    const nl = b.subarray(0, n).indexOf(0x0a);
    if (nl >= 0) return Buffer.concat([...chunks, b.subarray(0, nl)]);
    chunks.push(b.subarray(0, n));
    pos += n;
  }
}

/** A good line padded with `n` spaces inside its JSON (after its last byte): the same record, n bytes longer. */
const padded = (line: Buffer, n: number) => encodeLine(`${line.toString('utf8', 9)}${' '.repeat(n)}`);

/** Fix one range too short for a marker (see RepairOptions.fixShort); `prev` is the good line before it. */
function fixShort(fd: number, file: string, d: DamagedRange, prev: { at: number; len: number; first: number } | undefined): QuarantineEntry {
  if (d.last < d.first) {
    // Holds no event: the bytes become spaces of the line before (the same record, its CRC written anew).
    if (prev) {
      const entry = entryOf(file, fd, d, 'padded');
      appendQuarantine(file, entry);
      writeAt(fd, file, padded(lineAt(fd, prev.at), d.len), prev.at);
      return entry;
    }
    const next = lineAt(fd, d.at + d.len);
    const entry = entryOf(file, fd, d, 'padded');
    appendQuarantine(file, entry);
    writeAt(fd, file, padded(next, d.len), d.at);
    return entry;
  }
  const merged: DamagedRange | undefined = prev && { at: prev.at, len: prev.len + d.len, first: prev.first, last: d.last, why: `${d.why} (quarantined with the line before it: ${d.len} byte(s) are too few for a marker)` };
  const marker = merged && encodeMarker(merged.first, merged.last, merged.len, {}, merged.why);
  if (!merged || !marker) throw new JournalCorruptError(file, d.at, `${d.why}; ${d.len} damaged byte(s) holding events at the start of the file cannot be marked in place`);
  const entry = entryOf(file, fd, merged, 'merged');
  appendQuarantine(file, entry);
  writeAt(fd, file, marker, merged.at);
  return entry;
}

/** What quarantining one item did: its entry and, for a range marked in place, the marker and what it lost. */
export interface Quarantined {
  entry: QuarantineEntry;
  marker?: Buffer;
  lost?: Record<string, number>;
}

/**
 * Under the journal's flock: quarantine one item the scanner found — a gap noted (once), a damaged tail cut
 * (with `cut`; else left), a damaged range marked in place. undefined: nothing done; 'short': the range is too
 * few bytes for a marker (nothing changed).
 */
export function quarantineItem(fd: number, file: string, item: ScanItem & { kind: 'gap' | 'damage' }, cut: boolean): Quarantined | 'short' | undefined {
  if (item.kind === 'gap') {
    if (gapNoted(file, item.at, item.first, item.last)) return undefined;
    const entry = entryOf(file, fd, { at: item.at, len: 0, first: item.first, last: item.last, why: `sequence ${item.last + 1} follows ${item.first - 1}` }, 'gap');
    appendQuarantine(file, entry);
    return { entry };
  }
  if (item.tail) return cut ? { entry: cutTail(fd, file, item) } : undefined;
  const marked = markInPlace(fd, file, item);
  return marked ? { entry: marked.entry, marker: marked.marker, lost: marked.containers } : 'short';
}

/**
 * Under the journal's flock: quarantine every damaged range of the file at `fd`, note gaps, and (with cutTail)
 * cut a damaged tail. Each entry is handed to `onEntry` as it is made.
 */
export function repairJournal(fd: number, file: string, o: RepairOptions, onEntry: (q: QuarantineEntry) => void = () => {}): RepairResult {
  const result: RepairResult = { entries: [], truncatedBytes: 0 };
  const done = (q: QuarantineEntry) => {
    result.entries.push(q);
    onEntry(q);
  };
  // A short range's fix rewrites a line next to it: scan again from the start after each (they are rare).
  for (let pass = 0; pass < 10_000; pass++) {
    let short: { d: DamagedRange; prev?: { at: number; len: number; first: number } } | undefined;
    let prev: { at: number; len: number; first: number } | undefined;
    scanJournal(fd, { at: 0, seq: 0 }, fs.fstatSync(fd).size, (item) => {
      if (item.kind === 'record' || item.kind === 'marker') {
        prev = { at: item.at, len: item.len, first: item.kind === 'record' ? item.e.seq : item.first };
        return true;
      }
      const q = quarantineItem(fd, file, item, o.cutTail);
      if (q === 'short') {
        if (!o.fixShort) throw new JournalCorruptError(file, item.at, `${(item as DamagedRange).why}; ${item.len} damaged byte(s), too few for a quarantine marker: ${repairHint(file)}`);
        short = { d: item as DamagedRange, prev };
        return false;
      }
      if (q) done(q.entry);
      if (item.kind === 'damage' && item.tail) {
        if (q) result.truncatedBytes = item.len;
        return false;
      }
      if (item.kind === 'damage') prev = { at: item.at, len: item.len, first: item.first };
      return true;
    });
    if (!short) return result;
    const s = short as { d: DamagedRange; prev?: { at: number; len: number; first: number } };
    done(fixShort(fd, file, s.d, s.prev));
  }
  return result;
}

/** A damaged range or gap as check reports it. */
export interface CheckedDamage {
  offset: number;
  length: number;
  /** The seqs it must have held ([from, to]; none when to < from). */
  seqs: [number, number];
  reason: string;
  /** Runs to the end of the file (a torn tail). */
  tail: boolean;
  /** Containers whose ids can be read out of the damaged bytes. */
  containers: string[];
}

/** What `cordon journal check` found. */
export interface JournalCheckReport {
  journal: string;
  bytes: number;
  /** Good records, their last seq, and the containers they name. */
  records: number;
  lastSeq: number;
  containers: number;
  /** Quarantine markers in the file: where, and the seqs each stands for. */
  markers: Array<{ offset: number; length: number; seqs: [number, number] }>;
  /** Damage not yet quarantined (gaps not yet noted in the quarantine file are listed here too). */
  damage: CheckedDamage[];
  /** Earlier quarantines, from the quarantine file (without their bytes). */
  quarantineFile: string;
  quarantined: Array<Omit<QuarantineEntry, 'bytes'>>;
  snapshot: { file: string; state: 'none' | 'unreadable' | 'matches' | 'mismatch'; seq?: number; offset?: number };
  /** No damage found. */
  clean: boolean;
}

/** Read the whole journal (under its flock, read-only) and report what it holds; changes nothing. */
export function checkJournal(file: string, lock: <T>(fd: number, fn: () => T) => T): JournalCheckReport {
  const fd = fs.openSync(file, 'r');
  try {
    return lock(fd, () => {
      const st = fs.fstatSync(fd);
      const ids = new Set<string>();
      const r: JournalCheckReport = {
        journal: file, bytes: st.size, records: 0, lastSeq: 0, containers: 0, markers: [], damage: [],
        quarantineFile: quarantinePathOf(file),
        quarantined: readQuarantine(file).map(({ bytes: _bytes, ...q }) => q),
        snapshot: { file: snapshotPathOf(file), state: 'none' },
        clean: true,
      };
      scanJournal(fd, { at: 0, seq: 0 }, st.size, (item) => {
        if (item.kind === 'record') {
          r.records++;
          r.lastSeq = item.e.seq;
          ids.add(item.e.containerId);
        } else if (item.kind === 'marker') {
          r.markers.push({ offset: item.at, length: item.len, seqs: [item.first, item.last] });
          r.lastSeq = item.last;
        } else if (item.kind === 'gap') {
          if (!gapNoted(file, item.at, item.first, item.last)) r.damage.push({ offset: item.at, length: 0, seqs: [item.first, item.last], reason: `sequence ${item.last + 1} follows ${item.first - 1}`, tail: false, containers: [] });
        } else {
          const bytes = Buffer.alloc(item.len);
          fs.readSync(fd, bytes, 0, item.len, item.at);
          r.damage.push({ offset: item.at, length: item.len, seqs: [item.first, item.last], reason: item.why, tail: item.tail, containers: entryOf(file, fd, item, 'marked', bytes).containers });
        }
        return true;
      });
      r.containers = ids.size;
      r.clean = r.damage.length === 0;
      const s = readSnapshot(r.snapshot.file);
      if (s === 'unreadable') r.snapshot.state = 'unreadable';
      else if (s) {
        const fits = s.dev === st.dev && s.ino === st.ino && s.offset <= st.size && endsWithRecord(fd, s);
        r.snapshot = { ...r.snapshot, state: fits ? 'matches' : 'mismatch', seq: s.seq, offset: s.offset };
      }
      return r;
    });
  } finally {
    fs.closeSync(fd);
  }
}

/** `cordon journal repair`: open the journal for writing and repair it under its flock (see repairJournal). */
export function repairJournalFile(file: string, lock: <T>(fd: number, fn: () => T) => T): RepairResult {
  const fd = fs.openSync(file, fs.constants.O_RDWR);
  try {
    return lock(fd, () => repairJournal(fd, file, { cutTail: true, fixShort: true }));
  } finally {
    fs.closeSync(fd);
  }
}
