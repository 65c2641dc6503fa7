/**
 * The CLI side of the daemon's control socket (see control-socket.ts): light on purpose, so a `create` next
 * to a daemon costs no more module loading than one without. Every request has a deadline (a `Timeout` naming
 * the socket; the daemon then creates nothing for the caller that gave up), and an answer that never comes
 * because the daemon died is not a JSON error: the caller reports what the state root says happened.
 */
import fs from 'node:fs';
import path from 'node:path';
import { POLL, connectUnix, pollFd, sendFds } from '../kernel/index.js';
import type { NetworkConfig } from '../config/network.js';
import { LifecycleError, isErrorCode } from '../errors/index.js';
import { StateRoot } from './state-dir.js';
import { isDamagedState } from './state-file.js';

/** Name of the socket in the state root. */
export const CONTROL_SOCKET = 'cordon.sock';

/** The environment variable that sets how long the CLI waits for the daemon's answer, in milliseconds. */
export const CONTROL_TIMEOUT_ENV = 'CORDON_CONTROL_TIMEOUT_MS';

/** How long the CLI waits for the daemon's answer without CORDON_CONTROL_TIMEOUT_MS (a create with hooks and CNI fits). */
export const DEFAULT_CONTROL_TIMEOUT_MS = 30_000;

/** A request over the control socket. */
export interface ControlRequest {
  verb: 'create';
  id: string;
  bundle: string;
  pidFile?: string;
  noPivot?: boolean;
  consoleSocket?: string;
  /** The network config (`--network FILE`, parsed). */
  network?: NetworkConfig;
  /** Fds of the caller passed to the container as 3, 4, ... (sent after stdio; not in the JSON). */
  extraFiles?: number[];
}

/** What the daemon did for a create request. */
export interface DaemonCreated {
  /** Host pid of the container's init. */
  pid: number;
  /**
   * Set when the daemon died before it answered and the state root shows the container created: what happened,
   * for the caller to say (the container lives on; nothing is its parent any more).
   */
  recovered?: string;
}

/** The deadline of a control request: CORDON_CONTROL_TIMEOUT_MS, or 30 s. BadRequest when it is not a positive integer. */
export function controlTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[CONTROL_TIMEOUT_ENV];
  if (v === undefined || v === '') return DEFAULT_CONTROL_TIMEOUT_MS;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new LifecycleError('BadRequest', `${CONTROL_TIMEOUT_ENV}: expected a number of milliseconds > 0, got ${JSON.stringify(v)}`, { field: CONTROL_TIMEOUT_ENV });
  return Number(v);
}

/**
 * Ask the daemon of `root` to create a container with this process's stdio. Returns undefined when no
 * daemon listens (the caller creates it itself; `warn` says why when the daemon died during the request);
 * throws the daemon's error otherwise, or `Timeout` when it
 * does not answer within {@link controlTimeoutMs}. When the daemon dies before it answers, the state root
 * decides: the container created (a live init parked at its exec fifo) is a success; nothing created with no
 * daemon left is undefined again (the caller creates it); anything else is an error saying what is there.
 */
export async function createThroughDaemon(root: string, req: Omit<ControlRequest, 'verb'>, warn: (message: string) => void = () => {}): Promise<DaemonCreated | undefined> {
  const file = path.join(root, CONTROL_SOCKET);
  if (!fs.existsSync(file)) return undefined;
  const timeoutMs = controlTimeoutMs();
  let conn: number;
  try {
    conn = connectUnix(file);
  } catch {
    return undefined; // a stale socket: no daemon
  }
  let reply: Buffer | undefined;
  try {
    const { extraFiles, ...rest } = req;
    try {
      sendFds(conn, Buffer.from(JSON.stringify({ verb: 'create', ...rest, bundle: path.resolve(req.bundle) })), [0, 1, 2, ...(extraFiles ?? [])]);
      reply = readReply(conn, file, req.id, timeoutMs);
    } catch (e) {
      if (e instanceof LifecycleError) throw e; // the Timeout
      reply = undefined; // the connection broke (ECONNRESET, EPIPE): as a daemon that died
    }
  } finally {
    fs.closeSync(conn); // after a Timeout, the daemon sees the hangup and creates nothing
  }
  const parsed = parseReply(reply);
  if (!parsed) return outcomeWithoutAnswer(root, file, req.id, warn);
  if (parsed.error) throw new LifecycleError(isErrorCode(parsed.error.code) ? parsed.error.code : 'SystemError', parsed.error.message);
  return { pid: parsed.pid ?? 0 };
}

/** Read the reply until the daemon closes the connection, waiting in poll(2) up to the deadline (no busy loop). */
function readReply(conn: number, file: string, id: string, timeoutMs: number): Buffer {
  const end = Date.now() + timeoutMs;
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    const left = end - Date.now();
    if (left <= 0 || pollFd(conn, POLL.IN, left) === 0) {
      throw new LifecycleError('Timeout', `create ${id}: no answer from the daemon on ${file} within ${timeoutMs} ms (${CONTROL_TIMEOUT_ENV}); the request is withdrawn, and the daemon creates nothing for it`);
    }
    let n: number;
    try {
      n = fs.readSync(conn, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN' || (e as NodeJS.ErrnoException).code === 'EINTR') continue; // poll again
      throw e;
    }
    if (n <= 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

type Reply = { ok?: boolean; pid?: number; error?: { code: string; message: string } };

/** The daemon's JSON answer, or undefined for none (EOF before it, or a reply cut short). */
function parseReply(data: Buffer | undefined): Reply | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const r = JSON.parse(data.toString('utf8')) as unknown;
    return typeof r === 'object' && r !== null && ((r as Reply).ok === true || typeof (r as Reply).error === 'object') ? (r as Reply) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a daemon still accepts connections on the socket. */
function daemonListens(file: string): boolean {
  try {
    fs.closeSync(connectUnix(file));
    return true;
  } catch {
    return false;
  }
}

/**
 * The daemon closed the connection without an answer (it died mid-request): what the state root and the log
 * say happened. Created — state.json with a live init parked at its exec fifo, and the `create` fact in the
 * log — is a success. Anything less, with the daemon gone, is a create cut short: what it left is removed (as
 * `delete --force` would) and the caller creates the container itself; with a daemon still listening nothing is
 * touched and the error says what is there.
 */
async function outcomeWithoutAnswer(root: string, file: string, id: string, warn: (message: string) => void): Promise<DaemonCreated | undefined> {
  const dead = `the daemon (${file}) closed the connection before it answered`;
  const state = new StateRoot(root);
  let rec;
  try {
    rec = state.read(id);
  } catch (e) {
    if (isDamagedState(e)) throw new LifecycleError('SystemError', `create ${id}: ${dead}, and the container's ${e.message}; \`cordon delete --force ${id}\` removes it`, { cause: e });
    throw e;
  }
  const { ContainerHost } = await import('./container-host.js');
  const h = await ContainerHost.open({ root, watch: 'own' });
  try {
    let logged: string;
    try {
      logged = h.machineState(id);
    } catch {
      logged = 'not in the log';
    }
    const status = rec ? state.status(rec) : undefined;
    if (rec && status === 'created' && logged === 'created') {
      return { pid: rec.pid, recovered: `${dead}; container ${id} was created (pid ${rec.pid}) and is recorded; it has no parent to record its exit code` };
    }
    if (!state.exists(id) && logged === 'not in the log') {
      // Nothing of it exists: with the daemon gone the caller creates it itself, as with no daemon at all.
      if (!daemonListens(file)) {
        warn(`${dead}; nothing was created and no daemon listens any more: container ${id} is created here`);
        return undefined;
      }
      throw new LifecycleError('SystemError', `create ${id}: ${dead}; nothing was created`);
    }
    const found = `${rec ? `state.json (status ${status})` : state.exists(id) ? `${state.dir(id)} without state.json` : 'no state dir'}, the log: ${logged}`;
    if (daemonListens(file)) throw new LifecycleError('SystemError', `create ${id}: ${dead}, in the middle of the create (${found}); \`cordon delete --force ${id}\` removes what is left`);
    // The daemon is gone: what its create left is removed, and the caller creates the container itself.
    await h.destroy(id, { force: true });
    warn(`${dead}, in the middle of the create (${found}); what it left is removed and container ${id} is created here`);
    return undefined;
  } finally {
    await h.close();
  }
}
