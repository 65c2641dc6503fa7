/**
 * Helpers for the CLI tests: run `node bin/cordon.js --root ROOT ...` (and runc) as separate processes, read
 * state, poll, and check that a failed container left nothing behind.
 *
 * Every command's stdout/stderr go to files, not pipes: a created or detached container inherits them and keeps
 * them open after the CLI exits, so waiting for a pipe to close would wait for the container. A call resolves
 * when the CLI process exits.
 */
import { type ErrorCode, isErrorCode } from '../../errors/index.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../fixtures/bundle.js';

export const CLI = join(REPO_ROOT, 'bin', 'cordon.js');

/** The environment every command runs with: ours without NODE_EXTRA_CA_CERTS. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export interface CmdResult {
  /** Exit code, or null when the command was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time until the process exited. */
  ms: number;
}

/** A command running in the background. */
export interface Running {
  child: ChildProcess;
  /** Files holding its stdout and stderr (and those of any container that inherited them). */
  stdoutFile: string;
  stderrFile: string;
  /** Current contents of the stdout file. */
  stdoutNow(): string;
  done: Promise<CmdResult>;
}

const ioDir = mkdtempSync(join(tmpdir(), 'cordon-cli-io-'));
let ioSeq = 0;

/** Remove the directory holding the output files of this test file's commands. */
export function removeIoDir(): void {
  rmSync(ioDir, { recursive: true, force: true });
}

/** Options of a command: its cwd, how long it may run, variables added to its environment, its stdout fd. */
export interface CmdOptions {
  cwd?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** An fd for its stdout (or stderr) instead of a fresh file (that output is then not captured). */
  stdoutFd?: number;
  stderrFd?: number;
  /**
   * Real pipes (not Node's socketpairs) for stdin, stdout and stderr instead of files, made by bash's process
   * substitution: a container created by it inherits pipes, which CRIU can dump (a host file outside the
   * container's mounts it cannot). Its output is then not captured.
   */
  pipes?: boolean;
}

/** Start a command with stdout/stderr in fresh files; `done` resolves when it exits (killed after timeoutMs). */
export function start(cmd: string, args: string[], opts: CmdOptions = {}): Running {
  const n = ++ioSeq;
  const stdoutFile = join(ioDir, `${n}.out`);
  const stderrFile = join(ioDir, `${n}.err`);
  const out = openSync(stdoutFile, 'a');
  const err = openSync(stderrFile, 'a');
  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = opts.pipes
      ? spawn('bash', ['-c', 'exec "$@" < <(exec sleep 600) > >(exec cat >/dev/null) 2>&1', 'bash', cmd, ...args], { cwd: opts.cwd, env: { ...cliEnv(), ...opts.env }, stdio: 'ignore' })
      : spawn(cmd, args, { cwd: opts.cwd, env: { ...cliEnv(), ...opts.env }, stdio: ['ignore', opts.stdoutFd ?? out, opts.stderrFd ?? err] });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const done = new Promise<CmdResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout after ${timeoutMs} ms: ${cmd} ${args.join(' ')}\nstderr: ${readFileSync(stderrFile, 'utf8')}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: readFileSync(stdoutFile, 'utf8'), stderr: readFileSync(stderrFile, 'utf8'), ms: performance.now() - t0 });
    });
  });
  return { child, stdoutFile, stderrFile, stdoutNow: () => readFileSync(stdoutFile, 'utf8'), done };
}

/** Entries of a state root other than the host's event journal (which outlives every container). */
export function stateEntries(root: string): string[] {
  return existsSync(root) ? readdirSync(root).filter((e) => e !== 'events.journal') : [];
}

/** Run a command to its exit. */
export function exec(cmd: string, args: string[], opts: CmdOptions = {}): Promise<CmdResult> {
  return start(cmd, args, opts).done;
}

/** `node bin/cordon.js --root ROOT ...args` in the background. */
export function startCordon(root: string, args: string[], opts: CmdOptions = {}): Running {
  return start(process.execPath, [CLI, '--root', root, ...args], opts);
}

/** `node bin/cordon.js --root ROOT ...args` to its exit. */
export function cordon(root: string, args: string[], opts: CmdOptions = {}): Promise<CmdResult> {
  return startCordon(root, args, opts).done;
}

/** `runc --root ROOT ...args` to its exit. */
export function runc(root: string, args: string[], opts: CmdOptions = {}): Promise<CmdResult> {
  return exec('runc', ['--root', root, ...args], opts);
}

/** `runc --root ROOT ...args` in the background. */
export function startRunc(root: string, args: string[], opts: CmdOptions = {}): Running {
  return start('runc', ['--root', root, ...args], opts);
}

/** The error lines of a cordon stderr: lines starting "cordon: " that are not warnings. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('cordon: ') && !l.startsWith('cordon: warning: '));
}

/** The code and message of a failed cordon command's single error line, `cordon: <Code>: <message>` (fails the test otherwise). */
export function theFailure(r: CmdResult): { code: ErrorCode; message: string } {
  const lines = errorLines(r.stderr);
  if (lines.length !== 1) throw new Error(`expected exactly one error line on stderr, got ${lines.length}:\n${r.stderr}`);
  const m = /^cordon: ([A-Za-z]+): (.*)$/s.exec(lines[0]);
  if (!m || !isErrorCode(m[1])) throw new Error(`expected "cordon: <Code>: <message>" with a known code, got ${JSON.stringify(lines[0])}`);
  return { code: m[1], message: m[2] };
}

/** The single error line of a failed cordon command without its code: `cordon: <message>` (the code must be a known one). */
export function theError(r: CmdResult): string {
  return `cordon: ${theFailure(r).message}`;
}

/** Parsed `state` output; throws with stderr when the command failed. */
export async function stateOf(root: string, id: string, tool: 'cordon' | 'runc' = 'cordon'): Promise<Record<string, unknown>> {
  const r = tool === 'cordon' ? await cordon(root, ['state', id]) : await runc(root, ['state', id]);
  if (r.code !== 0) throw new Error(`${tool} state ${id} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Poll until `fn` returns a truthy value (or throw after timeoutMs). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Poll `state` until the status is `status`; returns that state. */
export function waitStatus(root: string, id: string, status: string, tool: 'cordon' | 'runc' = 'cordon', timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return waitFor(`${tool} ${id} to be ${status}`, async () => {
    const s = await stateOf(root, id, tool);
    return s.status === status ? s : undefined;
  }, timeoutMs);
}

/** True while a process with this pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

/** /proc/PID/cmdline split at NULs. */
export function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
}

/** readlink /proc/PID/exe. */
export function exe(pid: number): string {
  return readlinkSync(`/proc/${pid}/exe`);
}

/** PPid from /proc/PID/status. */
export function ppid(pid: number): number {
  const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

/** True when this process has CAP_SYS_RESOURCE in its effective set. */
export function hasCapSysResource(): boolean {
  const m = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n;
}

/** This process's hard RLIMIT_NOFILE (the limit a container's init inherits). */
export function hardNofile(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/**
 * What a container with this bundle left behind: processes whose root is the bundle's rootfs (same device and
 * inode) or whose command line names the bundle, mounts naming the bundle in our mount table, state dirs under
 * the root, and the pid file. Empty when nothing is left.
 */
export function leftovers(bundleDir: string, root: string, pidFile?: string): string[] {
  const found: string[] = [];
  const rootfs = statSync(join(bundleDir, 'rootfs'));
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const st = statSync(`/proc/${e}/root/.`);
      if (st.dev === rootfs.dev && st.ino === rootfs.ino) found.push(`process ${e} has the rootfs as its root`);
    } catch {
      // gone, or a kernel thread we cannot look into
    }
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(bundleDir) && alive(Number(e))) found.push(`process ${e} names the bundle: ${cmdline(Number(e)).join(' ')}`);
    } catch {
      // gone
    }
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(bundleDir)) found.push(`mount: ${line}`);
  }
  for (const e of stateEntries(root)) found.push(`state root entry: ${e}`);
  if (pidFile && existsSync(pidFile)) found.push(`pid file ${pidFile}`);
  return found;
}

/** Force-delete every container cordon lists under root, then remove the root. */
export async function cleanupCordonRoot(root: string): Promise<void> {
  if (!existsSync(root)) return;
  const r = await cordon(root, ['list', '-q']);
  for (const id of r.stdout.split('\n').filter(Boolean)) await cordon(root, ['delete', '--force', id]);
  for (const id of stateEntries(root)) await cordon(root, ['delete', '--force', id]);
  rmSync(root, { recursive: true, force: true });
}

/** Force-delete every container runc lists under root, then remove the root. */
export async function cleanupRuncRoot(root: string): Promise<void> {
  if (!existsSync(root)) return;
  const r = await runc(root, ['list', '-q']);
  for (const id of r.stdout.split('\n').filter(Boolean)) await runc(root, ['delete', '--force', id]);
  rmSync(root, { recursive: true, force: true });
}

/** A fresh, empty state root directory. */
export function freshRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

/** RFC 3339 with optional fractional seconds, UTC. */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
