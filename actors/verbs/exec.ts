/**
 * exec: another process in a running container — the container's own process from the config of create
 * (never config.json again) with the caller's overrides (runc's exec flags), or a whole OCI process object
 * (`--process FILE`). It joins the container's namespaces and cgroups; its start and exit are facts
 * (exec-start, exec-exit) with an exec id, recorded by its machine's actors (machines/exec.ts). A start that
 * cannot be recorded kills the process.
 */
import { randomUUID } from 'node:crypto';
import { Issues, type ProcessSetup } from '../../config/index.js';
import { convertProcess } from '../../config/process.js';
import { LifecycleError } from '../../errors/index.js';
import { type ExitStatus, capabilityNumber, isSameProcess, spawnExec } from '../../kernel/index.js';
import { notRunning } from '../../machines/commands.js';
import { sendToConsoleSocket } from '../foreground.js';
import { storedConfigOf } from '../state-dir.js';
import { cgroupOf, storedRecord } from './cgroups.js';
import { crashPoint } from '../crash-points.js';
import type { VerbContext } from './context.js';

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
    if (!p) throw new LifecycleError('ConfigInvalid', 'process: invalid', { field: 'process' });
    if (req.tty) p.terminal = true;
    if (p.terminal && !p.consoleSize && req.consoleSize) p.consoleSize = req.consoleSize;
    return p;
  }
  if (!req.args.length) throw new LifecycleError('BadRequest', 'exec: a command is required', { field: 'args' });
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
      if (n === undefined) throw new LifecycleError('BadRequest', `--cap: unknown capability ${JSON.stringify(c)}`, { field: 'caps' });
      return n;
    });
    const add = (xs: number[]) => [...new Set([...xs, ...nums])];
    p.capabilities = { bounding: add(base.capabilities.bounding), effective: add(base.capabilities.effective), permitted: add(base.capabilities.permitted), inheritable: add(base.capabilities.inheritable), ambient: add(base.capabilities.ambient) };
  }
  return p;
}

/** A process started in a container, not yet recorded as exited. */
export interface StartedExec {
  execId: string;
  pid: number;
  /** Resolves with the exit status once the process is reaped. */
  exited: Promise<ExitStatus>;
  /** Stop following it (a detached exec: this process may exit while it runs on). */
  detach(): void;
  /** Signal it through its pidfd (false once it is gone). */
  kill(signal: number): boolean;
  /** With a terminal and no console socket: the pty master (the caller's to drive and close). */
  ptyMaster?: number;
}

/** Parameters of exec. */
export interface ExecParams {
  request: ExecRequest;
  io: ExecIo;
}

/**
 * Start a process in container `id` (the machine allowed it: it is running). exec-start is recorded at the
 * process's setup gate — in the container's namespaces and cgroups, before anything of the caller's runs —
 * so a start that cannot be recorded runs nothing; a process that then fails to start gets its exec-exit.
 */
export async function startExec(ctx: VerbContext, id: string, p: ExecParams): Promise<StartedExec> {
  const rec = storedRecord(ctx, id);
  const { setup } = storedConfigOf(rec);
  const proc = execProcess(setup.process, p.request);
  const cg = rec.cgroupPaths ? cgroupOf(rec) : undefined;
  const execId = randomUUID();
  let recorded: number | undefined;
  let notRecorded: unknown;
  const gate = async (pid: number) => {
    await cg?.joinAsync(pid);
    try {
      await ctx.recorder.record(id, 'exec-start', { execId, pid, args: proc.args });
    } catch (e) {
      notRecorded = e;
      throw e;
    }
    crashPoint('exec:recorded');
    recorded = pid;
  };
  let spawned: Awaited<ReturnType<typeof spawnExec>>;
  try {
    spawned = await spawnExec({ pid: rec.pid, pidStartTime: BigInt(rec.pidStartTime), setup, joinCgroups: gate }, proc, { stdio: p.io.stdio, extraFiles: p.io.extraFiles });
  } catch (e) {
    if (recorded !== undefined) await recordFailedStart(ctx, id, execId, recorded, e);
    // The process never ran; the reason is the append that failed at its gate (the spawn wraps it), or the
    // container's init died meanwhile (its exit not recorded yet): that is the machine's refusal, not a bad config.
    if (!notRecorded && !isSameProcess(rec.pid, BigInt(rec.pidStartTime))) throw notRunning(id, 'stopped', 'exec into');
    throw notRecorded ?? e;
  }
  const { handle } = spawned;
  let master = spawned.ptyMaster;
  if (master !== undefined && p.io.consoleSocket) {
    const m = master;
    master = undefined;
    try {
      sendToConsoleSocket(p.io.consoleSocket, m);
    } catch (e) {
      // Its terminal could not be handed over: it must not run on.
      handle.kill(9);
      const st = await handle.exited;
      await recordExecExit(ctx, id, { execId, pid: handle.pid }, st).catch((le: Error) => ((e as Error).message += ` (and its exit could not be recorded: ${le.message})`));
      throw e;
    }
  }
  return { execId, pid: handle.pid, exited: handle.exited, detach: () => handle.detach(), kill: (sig) => handle.kill(sig), ptyMaster: master };
}

/** An exec recorded as started whose process then failed to start: its exit is a fact too. */
async function recordFailedStart(ctx: VerbContext, id: string, execId: string, pid: number, e: unknown): Promise<void> {
  try {
    await ctx.recorder.record(id, 'exec-exit', { execId, pid, exitCode: null, signal: null, error: (e as Error).message });
  } catch (le) {
    (e as Error).message += ` (and its exit could not be recorded: ${(le as Error).message})`;
  }
}

/** Record an exec's exit. */
export async function recordExecExit(ctx: VerbContext, id: string, e: Pick<StartedExec, 'execId' | 'pid'>, st: ExitStatus): Promise<void> {
  await ctx.recorder.record(id, 'exec-exit', { execId: e.execId, pid: e.pid, exitCode: st.code, signal: st.signal });
}
