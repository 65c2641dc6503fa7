/**
 * A container's state.json as a file: what makes its content a usable record (the fields every verb reads, with
 * their types), the typed error a damaged one gives (StateCorrupt, naming the file and what is wrong with it),
 * and writes that name the file and errno when the disk refuses them (ENOSPC, EIO, EROFS, ...).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LifecycleError } from '../errors/index.js';

/** The fields of a record and the check each must pass (the rest — config, annotations' values — is checked where used). */
const FIELDS: Array<[name: string, ok: (v: unknown) => boolean, expected: string, optional?: true]> = [
  ['id', (v) => typeof v === 'string' && v !== '', 'a non-empty string'],
  ['pid', (v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'],
  ['pidStartTime', (v) => typeof v === 'string' && /^\d+$/.test(v), 'a decimal string'],
  ['bundle', (v) => typeof v === 'string', 'a string'],
  ['rootfs', (v) => typeof v === 'string', 'a string'],
  ['created', (v) => typeof v === 'string', 'a string'],
  ['owner', (v) => typeof v === 'string', 'a string'],
  ['annotations', (v) => isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string'), 'an object of strings'],
  ['namespaces', (v) => Array.isArray(v) && v.every((n) => isPlainObject(n) && typeof n.type === 'string'), 'an array of {type, path}'],
  ['cgroupPaths', (v) => isPlainObject(v) && Object.values(v).every((x) => typeof x === 'string'), 'an object of paths', true],
  ['cgroupCreated', (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'an array of paths', true],
];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * What is wrong with a parsed state record of container `id`, or undefined when every field a verb reads is
 * there with its type (and the id is the directory's).
 */
export function recordProblem(x: unknown, id: string): string | undefined {
  if (!isPlainObject(x)) return `expected a JSON object, got ${describe(x)}`;
  if (Object.keys(x).length === 0) return 'an empty object ({}): none of the fields of a state record';
  for (const [name, ok, expected, optional] of FIELDS) {
    const v = x[name];
    if (optional && v === undefined) continue;
    if (!ok(v)) return `${name}: expected ${expected}, got ${describe(v)}`;
  }
  if (x.id !== id) return `id: ${JSON.stringify(x.id)} is not the directory's id ${JSON.stringify(id)}`;
  return undefined;
}

/** What is wrong with the text of a state.json (empty, cut short, not JSON), or undefined when it parses. */
export function parseProblem(text: string): { value?: unknown; problem?: string } {
  if (text.trim() === '') return { problem: 'the file is empty' };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    const m = (e as Error).message;
    const cut = /^(Unterminated|Unexpected end)/.test(m) || !text.endsWith('\n');
    return { problem: `${cut ? 'truncated JSON' : 'invalid JSON'} (${m}; ${Buffer.byteLength(text)} bytes)` };
  }
}

/**
 * A container's state.json that cannot be used (StateCorrupt): `FILE is damaged: REASON`. The door adds the
 * operation (the CLI prints `cordon: StateCorrupt: state web: /run/cordon/web/state.json is damaged: ...`).
 */
export class StateCorruptError extends LifecycleError {
  /** The container whose state file it is. */
  readonly id: string;
  /** The file. */
  readonly file: string;
  /** What is wrong with it. */
  readonly problem: string;

  constructor(id: string, file: string, problem: string) {
    super('StateCorrupt', `${file} is damaged: ${problem}`);
    this.id = id;
    this.file = file;
    this.problem = problem;
  }
}

/** Whether `e` is the error of a damaged state file. */
export function isDamagedState(e: unknown): e is StateCorruptError {
  return e instanceof StateCorruptError;
}

/** "ENOSPC (no space left on device)" from a Node fs error. */
export function errnoPart(e: NodeJS.ErrnoException): string {
  const text = e.message.replace(/^[A-Z]+: /, '').replace(/, \w+( '.*')?$/, '');
  return e.code ? `${e.code} (${text})` : e.message;
}

/**
 * Write `data` to `file` atomically (a temporary file beside it, then rename). A failure removes the temporary
 * file and is a SystemError naming `what`, the step, the file and errno: `container web: write
 * /run/cordon/web/state.json: ENOSPC (no space left on device)`.
 */
export function writeFileAtomic(file: string, data: string, what: string, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}`);
  let step = 'write';
  try {
    fs.writeFileSync(tmp, data, { mode });
    step = 'rename';
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a full disk leaves no half-written file behind
    const err = e as NodeJS.ErrnoException;
    throw new LifecycleError('SystemError', `${what}: ${step} ${file}: ${errnoPart(err)}`, { cause: e, ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}) });
  }
}
