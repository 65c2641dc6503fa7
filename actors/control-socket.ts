/**
 * The daemon's local command channel: a unix socket in the state root (ROOT/cordon.sock) taking one JSON
 * request per connection, with the caller's stdio attached (SCM_RIGHTS) for `create`, so a container the
 * CLI creates next to a running daemon is the daemon's child and its exit code is known. Answers
 * `{"ok": true, "pid": N}` or `{"error": {"code", "message"}}`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { acceptUnix, listenUnix, recvFds } from '../kernel/index.js';
import { watchReadable } from '../kernel/index.js';
import { LifecycleError } from '../errors/index.js';
import { toLifecycleError } from './errors.js';
import { ociStateOf } from './queries.js';
import type { Supervisor } from './supervisor.js';

import { CONTROL_SOCKET, type ControlRequest } from './daemon-client.js';

/** Serve the control socket for `sup` until the returned function is called. */
export function serveControlSocket(sup: Supervisor, root: string): () => void {
  const file = path.join(root, CONTROL_SOCKET);
  fs.rmSync(file, { force: true });
  const lfd = listenUnix(file);
  fs.chmodSync(file, 0o600);
  const conns = new Set<{ close(): void }>();
  const listener = watchReadable(lfd, () => {
    for (let c = acceptUnix(lfd); c >= 0; c = acceptUnix(lfd)) {
      const conn = c;
      const poll = watchReadable(conn, () => {
        poll.close();
        conns.delete(poll);
        void handle(sup, conn).finally(() => fs.closeSync(conn));
      });
      conns.add(poll);
    }
  });
  return () => {
    listener.close();
    for (const p of conns) p.close();
    fs.closeSync(lfd);
    fs.rmSync(file, { force: true });
  };
}

async function handle(sup: Supervisor, conn: number): Promise<void> {
  let fds: number[] = [];
  let reply: unknown;
  try {
    const msg = recvFds(conn, 64, 65536);
    fds = msg.fds;
    const req = JSON.parse(msg.data.toString('utf8')) as ControlRequest;
    if (req.verb !== 'create' || typeof req.id !== 'string' || typeof req.bundle !== 'string') throw new LifecycleError('BadRequest', 'bad request: expected {"verb":"create","id","bundle"}');
    await sup.containers.create(req.id, { bundle: req.bundle, pidFile: req.pidFile, noPivot: req.noPivot, consoleSocket: req.consoleSocket, network: req.network, stdio: fds.length >= 3 ? fds.slice(0, 3) : undefined, extraFiles: fds.length > 3 ? fds.slice(3) : undefined });
    reply = { ok: true, pid: ociStateOf(sup.containers.state, req.id).pid };
  } catch (e) {
    const err = toLifecycleError(e);
    reply = { error: { code: err.code, message: err.message } };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  try {
    fs.writeSync(conn, JSON.stringify(reply));
  } catch {
    // the client went away
  }
}

