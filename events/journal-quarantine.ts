/**
 * Quarantine of damaged journal bytes. A damaged range (bad CRC, bad JSON, a record the schema refuses, a seq
 * that does not continue, newlines lost or added) is first copied aside — one JSON line in
 * `events.journal.quarantine` next to the journal, fsync'd — then overwritten IN PLACE by a marker line of
 * exactly the same length (`CRC32 {"quarantined":[from,to],"containers":{...},"reason":"..."   }`), which
 * stands for the seqs the range held (possibly none). Every offset, index mark and snapshot stays valid and
 * other processes holding the file open are unaffected: the journal is never renamed or replaced. A damaged
 * tail (nothing good after it) is copied aside and cut. Callers hold the journal's flock.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import path from 'node:path';
import { type MarkerBody, encodeLine } from './journal-records.js';

/** What was done with a quarantined range. */
export type QuarantineAction = 'marked' | 'cut' | 'padded' | 'merged' | 'gap';

/** One line of the quarantine file. */
export interface QuarantineEntry {
  /** The journal the bytes came from. */
  journal: string;
  /** Where the damaged bytes were, and how many. */
  offset: number;
  length: number;
  /** The seqs they must have held, [from, to] (none when to < from; for a cut tail: from onwards, unknown). */
  seqs: [number, number];
  reason: string;
  /**
   * marked: replaced by a marker of the same length; cut: a damaged tail, cut off; padded: too short for a
   * marker and holding no seq, absorbed into the record before (or after) it as spaces inside its JSON; merged:
   * too short for a marker, so the record before it was quarantined with it (its bytes are in `bytes` too);
   * gap: no bytes at all (whole records missing), only noted.
   */
  action: QuarantineAction;
  time: string;
  /** Containers whose ids could be read out of the damaged text. */
  containers: string[];
  /** The damaged bytes, base64. */
  bytes: string;
}

/** Where a journal's quarantine file lives. */
export function quarantinePathOf(journalPath: string): string {
  return `${journalPath}.quarantine`;
}

/** The error of an operation on a file: names the file, the operation and errno. */
function fileError(file: string, op: string, e: unknown): LifecycleError {
  const err = e as NodeJS.ErrnoException;
  return new LifecycleError('EventLogFailed', `journal quarantine ${file}: ${op}: ${err.code ?? err.message}${err.code ? ` (${err.message})` : ''}`, {
    ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}),
    cause: e,
  });
}

/**
 * Containers whose records the damaged text held: each readable `"containerId"` with the highest
 * `"containerSeq"` that follows it in the same record (0 when none could be read).
 */
export function damagedContainers(bytes: Buffer): Record<string, number> {
  const text = bytes.toString('latin1');
  const ids: Array<{ at: number; id: string }> = [];
  for (const m of text.matchAll(/"containerId":"((?:[^"\\\n]|\\.){1,256})"/g)) {
    try {
      const id = JSON.parse(`"${m[1]}"`) as string;
      if (id.length > 0) ids.push({ at: m.index, id });
    } catch {
      // not readable
    }
  }
  const out: Record<string, number> = {};
  for (const { id } of ids) out[id] ??= 0;
  for (const m of text.matchAll(/"containerSeq":(\d{1,15})[,}]/g)) {
    const owner = ids.filter((x) => x.at < m.index).at(-1);
    if (owner) out[owner.id] = Math.max(out[owner.id], Number(m[1]));
  }
  return out;
}

/**
 * A marker line of exactly `length` bytes standing for seqs first..last, or undefined when even the shortest
 * one does not fit. What does not fit of `containers` and `reason` is left out; the rest is spaces.
 */
export function encodeMarker(first: number, last: number, length: number, containers: Record<string, number> = {}, reason?: string): Buffer | undefined {
  const candidates: MarkerBody[] = [
    { quarantined: [first, last], containers, ...(reason ? { reason: reason.slice(0, 200) } : {}) },
    { quarantined: [first, last], containers },
    { quarantined: [first, last] },
  ];
  for (const body of candidates) {
    if (body.containers && Object.keys(body.containers).length === 0) delete body.containers;
    const json = JSON.stringify(body);
    const pad = length - 10 - Buffer.byteLength(json);
    if (pad < 0) continue;
    const padded = `${json.slice(0, -1)}${' '.repeat(pad)}}`;
    return encodeLine(padded);
  }
  return undefined;
}

/** Append one entry to the quarantine file and fsync it (and, when it is new, its directory). */
export function appendQuarantine(journalPath: string, entry: QuarantineEntry): void {
  const file = quarantinePathOf(journalPath);
  const fresh = !fs.existsSync(file);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND, 0o600);
  } catch (e) {
    throw fileError(file, 'open', e);
  }
  try {
    const line = Buffer.from(`${JSON.stringify(entry)}\n`);
    for (let done = 0; done < line.length; ) done += fs.writeSync(fd, line, done, line.length - done);
    fs.fsyncSync(fd);
  } catch (e) {
    throw fileError(file, 'write', e);
  } finally {
    fs.closeSync(fd);
  }
  if (fresh) {
    try {
      const dfd = fs.openSync(path.dirname(file), 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      // the entry itself is on disk; the directory entry follows with the next sync
    }
  }
}

/** The quarantine file's entries (lines that do not parse are skipped); none when it does not exist. */
export function readQuarantine(journalPath: string): QuarantineEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(quarantinePathOf(journalPath), 'utf8');
  } catch {
    return [];
  }
  const out: QuarantineEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const x = JSON.parse(line) as QuarantineEntry;
      if (typeof x === 'object' && x !== null && typeof x.offset === 'number' && Array.isArray(x.seqs)) out.push(x);
    } catch {
      // a torn last line of a crash: skip
    }
  }
  return out;
}

/** A damaged range to quarantine: where, how long, the seqs it held, why. */
export interface DamagedRange {
  at: number;
  len: number;
  first: number;
  last: number;
  why: string;
}

const readBytes = (fd: number, at: number, len: number): Buffer => {
  const b = Buffer.alloc(len);
  const n = len > 0 ? fs.readSync(fd, b, 0, len, at) : 0;
  return b.subarray(0, n);
};

/** The quarantine entry of a range (its bytes read now). */
export function entryOf(journalPath: string, fd: number, d: DamagedRange, action: QuarantineAction, bytes = readBytes(fd, d.at, d.len)): QuarantineEntry {
  return {
    journal: journalPath,
    offset: d.at,
    length: d.len,
    seqs: [d.first, d.last],
    reason: d.why,
    action,
    time: new Date().toISOString(),
    containers: Object.keys(damagedContainers(bytes)),
    bytes: bytes.toString('base64'),
  };
}

/**
 * Write `buf` at byte `at` of the journal and fsync it, through a descriptor of its own: the journal's is
 * O_APPEND, and Linux appends a pwrite on such a descriptor whatever its offset. The new one must be of the
 * same file as `fd` (same device and inode).
 */
export function writeAt(fd: number, journalPath: string, buf: Buffer, at: number): void {
  let wfd = -1;
  try {
    wfd = fs.openSync(journalPath, fs.constants.O_WRONLY);
    const a = fs.fstatSync(fd);
    const b = fs.fstatSync(wfd);
    if (a.dev !== b.dev || a.ino !== b.ino) throw Object.assign(new Error('the path names another file than the one open'), { code: 'ESTALE', errno: -116 });
    for (let done = 0; done < buf.length; ) done += fs.writeSync(wfd, buf, done, buf.length - done, at + done);
    fs.fsyncSync(wfd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LifecycleError('EventLogFailed', `event log ${journalPath}: writing a quarantine marker at byte ${at}: ${err.syscall ?? 'write'}: ${err.code ?? err.message}`, {
      ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}),
      cause: e,
    });
  } finally {
    if (wfd >= 0) fs.closeSync(wfd);
  }
}

/**
 * Quarantine a damaged range followed by good records: copy it aside, then overwrite it in place with a marker
 * of the same length. Returns the entry and the marker, or undefined (nothing changed) when the range is too
 * short for a marker.
 */
export function markInPlace(fd: number, journalPath: string, d: DamagedRange): { entry: QuarantineEntry; marker: Buffer; containers: Record<string, number> } | undefined {
  const bytes = readBytes(fd, d.at, d.len);
  const containers = damagedContainers(bytes);
  const marker = encodeMarker(d.first, d.last, d.len, containers, d.why);
  if (!marker) return undefined;
  const entry = entryOf(journalPath, fd, d, 'marked', bytes);
  appendQuarantine(journalPath, entry);
  writeAt(fd, journalPath, marker, d.at);
  return { entry, marker, containers };
}

/** Quarantine a damaged tail: copy it aside, then cut the journal where it starts. */
export function cutTail(fd: number, journalPath: string, d: DamagedRange): QuarantineEntry {
  const entry = entryOf(journalPath, fd, d, 'cut');
  appendQuarantine(journalPath, entry);
  try {
    fs.ftruncateSync(fd, d.at);
    fs.fsyncSync(fd);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new LifecycleError('EventLogFailed', `event log ${journalPath}: cutting a torn tail at byte ${d.at}: ftruncate: ${err.code ?? err.message}`, { cause: e });
  }
  return entry;
}

/** A gap (whole records missing, no bytes) is noted once: whether the quarantine file already has it. */
export function gapNoted(journalPath: string, at: number, first: number, last: number): boolean {
  return readQuarantine(journalPath).some((q) => q.action === 'gap' && q.offset === at && q.seqs[0] === first && q.seqs[1] === last);
}

/** The seqs of an entry, as words. */
export function seqsText(first: number, last: number, tail = false): string {
  if (tail) return `seq ${first} onwards (if any)`;
  if (last < first) return 'no event';
  return first === last ? `seq ${first}` : `seqs ${first}..${last}`;
}

/** The one-line warning for an entry: the journal, the byte offset, the seqs, the containers, the quarantine file. */
export function describeEntry(q: QuarantineEntry): string {
  const what = q.action === 'gap' ? `${seqsText(q.seqs[0], q.seqs[1])} missing before byte ${q.offset} (no bytes left)` : `${q.length} damaged byte(s) at byte ${q.offset} (${q.reason}) holding ${seqsText(q.seqs[0], q.seqs[1], q.action === 'cut')}`;
  const done = { marked: 'copied aside and replaced by a quarantine marker', cut: 'copied aside and cut off (a torn tail)', padded: 'copied aside and absorbed as spaces into the record next to them', merged: 'copied aside with the record before them, replaced by a marker', gap: 'noted' }[q.action];
  const who = q.containers.length ? `; container(s) ${q.containers.join(', ')} may have lost a fact and are reconciled with the kernel` : '';
  return `journal ${q.journal}: ${what}: ${done} in ${quarantinePathOf(q.journal)}${who}`;
}
