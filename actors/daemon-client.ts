/**
 * The CLI side of the daemon's control socket (see control-socket.ts): light on purpose, so a `create` next
 * to a daemon costs no more module loading than one without.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connectUnix, sendFds } from '../kernel/index.js';
import type { NetworkConfig } from '../config/network.js';
import { LifecycleError, isErrorCode } from '../errors/index.js';

/** Name of the socket in the state root. */
export const CONTROL_SOCKET = 'cordon.sock';

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

/**
 * Ask the daemon of `root` to create a container with this process's stdio. Returns undefined when no
 * daemon listens (the caller creates it itself); throws the daemon's error otherwise.
 */
export function createThroughDaemon(root: string, req: Omit<ControlRequest, 'verb'>): { pid: number } | undefined {
  const file = path.join(root, CONTROL_SOCKET);
  if (!fs.existsSync(file)) return undefined;
  let conn: number;
  try {
    conn = connectUnix(file);
  } catch {
    return undefined; // a stale socket: no daemon
  }
  try {
    const { extraFiles, ...rest } = req;
    sendFds(conn, Buffer.from(JSON.stringify({ verb: 'create', ...rest, bundle: path.resolve(req.bundle) })), [0, 1, 2, ...(extraFiles ?? [])]);
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(conn, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
      if (n <= 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    const reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ok?: boolean; pid?: number; error?: { code: string; message: string } };
    if (reply.error) throw new LifecycleError(isErrorCode(reply.error.code) ? reply.error.code : 'SystemError', reply.error.message);
    return { pid: reply.pid ?? 0 };
  } finally {
    fs.closeSync(conn);
  }
}
