/**
 * Reading and writing cgroup control files, with errors that name the resource and the file (worded as
 * runc words them: `failed to write "X": write PATH: invalid argument`), and the parsers of their formats
 * (single values with "max", flat keyed "key value" lines, nested keyed "MAJ:MIN k=v ..." lines).
 */
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { CgroupError } from '../../config/cgroup-error.js';

/** Largest uint64: what "max" reads as (runc's math.MaxUint64). */
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;

const errorMap = util.getSystemErrorMap();
/** Go's wording where libuv's differs (runc's messages come from Go). */
const GO_WORDING: Record<string, string> = {
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  EBUSY: 'device or resource busy',
};

/** The errno name of a Node fs error ("ENOENT"), or undefined for anything else. */
export function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/** "no such file or directory" for a Node fs error, as Go (and so runc) words it. */
export function errnoDescription(e: unknown): string {
  const code = errnoCode(e);
  if (code !== undefined && GO_WORDING[code]) return GO_WORDING[code];
  const n = typeof e === 'object' && e !== null ? (e as { errno?: unknown }).errno : undefined;
  const entry = typeof n === 'number' ? errorMap.get(n) : undefined;
  if (entry) return entry[1];
  return e instanceof Error ? e.message : String(e);
}

const prefix = (resource: string | undefined) => (resource ? `${resource}: ` : '');

/**
 * Write `value` to `dir/file` with one write(2), without creating the file. Throws a CgroupError naming
 * the resource and the file: `memory.limit: open PATH: no such file or directory` when the file is not
 * there, `memory.limit: failed to write "1": write PATH: device or resource busy` when the kernel refuses.
 */
export function writeCgroupFile(dir: string, file: string, value: string, resource?: string): void {
  const p = path.join(dir, file);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  } catch (e) {
    throw new CgroupError(`${prefix(resource)}open ${p}: ${errnoDescription(e)}`, p, resource, errnoCode(e));
  }
  try {
    fs.writeSync(fd, value);
  } catch (e) {
    throw new CgroupError(`${prefix(resource)}failed to write ${JSON.stringify(value)}: write ${p}: ${errnoDescription(e)}`, p, resource, errnoCode(e));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * writeCgroupFile off the event loop (the threadpool does open, write, close): a first cgroup.procs write after
 * a quiet spell waits for an RCU grace period (~10 ms), which must not stall every other container's work.
 */
export async function writeCgroupFileAsync(dir: string, file: string, value: string, resource?: string): Promise<void> {
  const p = path.join(dir, file);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(p, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
  } catch (e) {
    throw new CgroupError(`${prefix(resource)}open ${p}: ${errnoDescription(e)}`, p, resource, errnoCode(e));
  }
  try {
    await fh.write(value);
  } catch (e) {
    throw new CgroupError(`${prefix(resource)}failed to write ${JSON.stringify(value)}: write ${p}: ${errnoDescription(e)}`, p, resource, errnoCode(e));
  } finally {
    await fh.close();
  }
}

/** Read `dir/file` whole; throws a CgroupError naming the file (and the resource, if given). */
export function readCgroupFile(dir: string, file: string, resource?: string): string {
  const p = path.join(dir, file);
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    throw new CgroupError(`${prefix(resource)}read ${p}: ${errnoDescription(e)}`, p, resource, errnoCode(e));
  }
}

/** Read `dir/file`, or undefined when it does not exist (optional kernel features). */
export function readOptionalFile(dir: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    const p = path.join(dir, file);
    throw new CgroupError(`read ${p}: ${errnoDescription(e)}`, p, undefined, errnoCode(e));
  }
}

/** True when `dir/file` exists. */
export function hasFile(dir: string, file: string): boolean {
  return fs.existsSync(path.join(dir, file));
}

/**
 * A cgroup number as runc's GetCgroupParamUint reads it: "max" is 2^64-1, a negative value (v1 shows -1
 * for "unlimited" in some files) is 0. Throws on anything else that is not a decimal integer.
 */
export function parseCgroupUint(text: string, where = 'value'): bigint {
  const t = text.trim();
  if (t === 'max') return UINT64_MAX;
  if (/^-\d+$/.test(t)) return 0n;
  if (!/^\d+$/.test(t)) throw new CgroupError(`unable to parse ${where}: ${JSON.stringify(t)} is not a number`, where);
  return BigInt(t);
}

/** Read a single-number file as runc does; `dir/file` must exist. */
export function readCgroupUint(dir: string, file: string): bigint {
  return parseCgroupUint(readCgroupFile(dir, file), path.join(dir, file));
}

/**
 * A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events, ...) as a map of numbers.
 * Lines that do not have exactly a key and a number are skipped.
 */
export function parseFlatKeyed(text: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 2) continue;
    if (f[1] === 'max') out[f[0]] = UINT64_MAX;
    else if (/^\d+$/.test(f[1])) out[f[0]] = BigInt(f[1]);
  }
  return out;
}

/** Read one key of a flat keyed file (0 when the file or the key is missing). */
export function readKey(dir: string, file: string, key: string): bigint {
  const t = readOptionalFile(dir, file);
  return t === undefined ? 0n : (parseFlatKeyed(t)[key] ?? 0n);
}

/** One line of a nested keyed file (io.stat, io.max): "8:0 rbytes=1 wbytes=2" → key "8:0" and its fields. */
export interface NestedKeyedLine {
  key: string;
  fields: Array<[string, string]>;
}

/** Parse a nested keyed file; fields without "=" are skipped. */
export function parseNestedKeyed(text: string): NestedKeyedLine[] {
  const out: NestedKeyedLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 0 || f[0] === '') continue;
    const fields: Array<[string, string]> = [];
    for (const item of f.slice(1)) {
      const eq = item.indexOf('=');
      if (eq > 0) fields.push([item.slice(0, eq), item.slice(eq + 1)]);
    }
    out.push({ key: f[0], fields });
  }
  return out;
}

/** Pids listed in `dir/cgroup.procs` (empty when the directory is gone). */
function readProcs(dir: string): number[] {
  const t = readOptionalFile(dir, 'cgroup.procs');
  if (t === undefined) return [];
  return t
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map((l) => Number(l.trim()));
}

/** Pids in `dir` and every sub-cgroup below it (runc's GetAllPids). */
export function readProcsRecursive(dir: string): number[] {
  const out = readProcs(dir);
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) if (e.isDirectory()) out.push(...readProcsRecursive(path.join(dir, e.name)));
  return out;
}

/** Sleep synchronously (for the few waits that must stay synchronous, such as runc's freezer retries). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Sleep asynchronously. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
