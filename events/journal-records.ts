/**
 * The journal's records on disk: one `CRC32 JSON\n` line each (JSON has no raw newline, so every newline
 * ends a record), the error for damage, and the two ways of reading them that need no scan from the start —
 * a range from an index mark, and the check that a prefix ends with a given record.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import type { JournalSnapshot } from './journal-snapshot.js';
import type { CordonEvent } from './schema.js';

/** A record in the middle of the journal is damaged (not a torn tail): refuse rather than guess. */
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
/** Bytes read at a time by readRecords(). */
const READ_CHUNK = 1 << 20;

/** A CRC as the journal writes it: 8 lower-case hex digits. */
export const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Encode one record line. */
export function encodeRecord(e: CordonEvent): Buffer {
  const json = JSON.stringify(e);
  return Buffer.from(`${hex8(crc32(json))} ${json}\n`);
}

/**
 * Records first..last, reading from `from.at` (the start of record `from.seq`, e.g. an index mark) up to byte
 * `from.end` in chunks; records before `first` are skipped by their newlines, never parsed. Each returned
 * record's CRC and seq are checked: damage throws JournalCorruptError, it is never returned.
 */
export function readRecords(fd: number, path: string, from: { at: number; seq: number; end: number }, first: number, last: number): CordonEvent[] {
  let at = from.at;
  let s = from.seq;
  const out: CordonEvent[] = [];
  let buf = Buffer.alloc(0);
  let bufAt = at; // file offset of buf[0]
  while (s <= last) {
    const nl = buf.indexOf(NL, at - bufAt);
    if (nl < 0) {
      const next = bufAt + buf.length;
      const want = Math.min(READ_CHUNK, from.end - next);
      if (want <= 0) throw new JournalCorruptError(path, at, 'record without its end');
      const more = Buffer.alloc(want);
      fs.readSync(fd, more, 0, want, next);
      buf = Buffer.concat([buf.subarray(at - bufAt), more]);
      bufAt = at;
      continue;
    }
    if (s >= first) {
      const line = buf.toString('utf8', at - bufAt, nl);
      const json = line.slice(9);
      if (line[8] !== ' ' || line.slice(0, 8) !== hex8(crc32(json))) throw new JournalCorruptError(path, at, 'checksum mismatch');
      const e = JSON.parse(json) as CordonEvent;
      if (e.seq !== s) throw new JournalCorruptError(path, at, `sequence ${e.seq} where ${s} belongs`);
      out.push(e);
    }
    at = bufAt + nl + 1;
    s++;
  }
  return out;
}

/**
 * Whether the file's first `snap.offset` bytes end with the very record the snapshot names: a newline (or the
 * file's start) before it, its CRC field (valid), its seq.
 */
export function endsWithRecord(fd: number, snap: Pick<JournalSnapshot, 'offset' | 'lastOffset' | 'lastCrc' | 'seq'>): boolean {
  const buf = Buffer.alloc(snap.offset - snap.lastOffset + 1);
  const from = snap.lastOffset - 1;
  if (from >= 0) fs.readSync(fd, buf, 0, buf.length, from);
  else fs.readSync(fd, buf, 1, buf.length - 1, 0);
  if ((from >= 0 && buf[0] !== NL) || buf.indexOf(NL, 1) !== buf.length - 1) return false;
  const line = buf.toString('utf8', 1, buf.length - 1);
  const json = line.slice(9);
  if (line[8] !== ' ' || line.slice(0, 8) !== snap.lastCrc || snap.lastCrc !== hex8(crc32(json))) return false;
  try {
    return (JSON.parse(json) as { seq?: unknown }).seq === snap.seq;
  } catch {
    return false;
  }
}
