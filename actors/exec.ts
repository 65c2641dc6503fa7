/**
 * Exec into a running container: the process is the container's own (from its bundle's config.json)
 * with the caller's overrides (runc's exec flags), or a whole OCI process object (`--process FILE`);
 * it joins the container's namespaces and cgroups, and its start and exit are events (exec-start,
 * exec-exit) with an exec id.
 */
import { randomUUID } from 'node:crypto';
import { Issues, loadBundle } from '../config/index.js';
import { convertProcess } from '../config/process.js';
import { capabilityNumber } from '../kernel/index.js';
import { spawnExec } from '../kernel/index.js';
import type { ExitStatus } from '../kernel/index.js';
import type { ProcessSetup } from '../config/index.js';
import { cgroupOf } from './cgroup-operations.js';
import type { EventRecorder } from './event-recorder.js';
import { RuntimeError, type StateRoot } from './state-dir.js';
import { sendToConsoleSocket } from './foreground.js';

/** runc exec's overrides of the container's process. */
export interface ExecRequest {
  args: string[];
  /** KEY=VALUE entries added (a key already set is replaced). */
  env?: string[];
  cwd?: string;
  /** uid[:gid]. */
  user?: { uid: number; gid?: number };
  additionalGids?: number[];
  /** Capabilities (CAP_X names) added to every set. */
  caps?: string[];
  noNewPrivileges?: boolean;
  /** A whole OCI `process` object instead of the container's (runc --process). */
  process?: unknown;
  /** A terminal for the process (runc exec -t): a pty made in the container. */
  tty?: boolean;
  /** Its window size (default: none set). */
  consoleSize?: { height: number; width: number };
}

/** Where an exec's stdio and extra fds come from. */
export interface ExecIo {
  stdio?: readonly number[];
  /** Fds the process gets as 3, 4, ... (runc --preserve-fds). */
  extraFiles?: readonly number[];
  /** With a terminal: a unix socket that receives the pty master (runc --console-socket); else the caller gets `ptyMaster`. */
  consoleSocket?: string;
}

/** A started exec. */
export interface ExecProcess {
  execId: string;
  pid: number;
  /** Resolves with the exit status (the exec-exit event is recorded first). */
  exited: Promise<ExitStatus>;
  /** Stop following it (a detached exec: this process may exit while it runs on). */
  detach(): void;
  /** Signal it through its pidfd (false once it is gone). */
  kill(signal: number): boolean;
  /** With a terminal and no console socket: the pty master (the caller's to drive and close). */
  ptyMaster?: number;
}

function mergeEnv(base: string[], add: string[]): string[] {
  const out = [...base];
  for (const kv of add) {
    const k = kv.split('=')[0];
    const i = out.findIndex((e) => e.split('=')[0] === k);
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/** The ProcessSetup an exec request asks for, on top of the container's process. */
export function execProcess(base: ProcessSetup, req: ExecRequest): ProcessSetup {
  if (req.process !== undefined) {
    const issues = new Issues();
    const p = convertProcess(issues, req.process);
    issues.throwIfAny();
    if (!p) throw new RuntimeError('bad-state', 'process: invalid');
    if (req.tty) p.terminal = true;
    if (p.terminal && !p.consoleSize && req.consoleSize) p.consoleSize = req.consoleSize;
    return p;
  }
  if (!req.args.length) throw new RuntimeError('bad-state', 'exec: a command is required');
  const p: ProcessSetup = { ...base, args: req.args, env: mergeEnv(base.env, req.env ?? []), terminal: req.tty === true, consoleSize: req.tty ? req.consoleSize : undefined };
  if (req.cwd) p.cwd = req.cwd;
  if (req.user) {
    p.uid = req.user.uid;
    p.gid = req.user.gid ?? p.gid;
  }
  if (req.additionalGids) p.additionalGids = req.additionalGids;
  if (req.noNewPrivileges) p.noNewPrivileges = true;
  if (req.caps?.length) {
    const nums = req.caps.map((c) => {
      const n = capabilityNumber(c);
      if (n === undefined) throw new RuntimeError('bad-state', `--cap: unknown capability ${JSON.stringify(c)}`);
      return n;
    });
    const add = (xs: number[]) => [...new Set([...xs, ...nums])];
    p.capabilities = { bounding: add(base.capabilities.bounding), effective: add(base.capabilities.effective), permitted: add(base.capabilities.permitted), inheritable: add(base.capabilities.inheritable), ambient: add(base.capabilities.ambient) };
  }
  return p;
}

/** Start a process in container `id` (which must be running). */
export async function execInContainer(state: StateRoot, id: string, req: ExecRequest, opts: ExecIo & { recorder?: EventRecorder } = {}): Promise<ExecProcess> {
  const rec = state.read(id);
  const status = state.status(rec);
  if (status !== 'running') throw new RuntimeError('bad-state', `cannot exec in a container that is ${status}`);
  const bundle = await loadBundle(rec.bundle);
  const proc = execProcess(bundle.setup.process, req);
  const cg = rec.cgroupPaths ? cgroupOf(rec) : undefined;
  const { handle, ptyMaster } = await spawnExec({ pid: rec.pid, pidStartTime: BigInt(rec.pidStartTime), setup: bundle.setup, joinCgroups: cg ? (pid) => cg.joinAsync(pid) : undefined }, proc, { stdio: opts.stdio, extraFiles: opts.extraFiles });
  let master = ptyMaster;
  if (master !== undefined && opts.consoleSocket) {
    try {
      sendToConsoleSocket(opts.consoleSocket, master);
    } catch (e) {
      handle.kill(9);
      throw e;
    } finally {
      master = undefined;
    }
  }
  const execId = randomUUID();
  await opts.recorder?.tryRecord(id, 'exec-start', { execId, pid: handle.pid, args: proc.args });
  const exited = handle.exited.then(async (st) => {
    await opts.recorder?.tryRecord(id, 'exec-exit', { execId, pid: handle.pid, exitCode: st.code, signal: st.signal });
    return st;
  });
  return { execId, pid: handle.pid, exited, detach: () => handle.detach(), kill: (sig) => handle.kill(sig), ptyMaster: master };
}
