/**
 * The daemon's local command channel: a unix socket in the state root (ROOT/cordon.sock) taking one JSON
 * request per connection, with the caller's stdio attached (SCM_RIGHTS) for `create`, so a container the
 * CLI creates next to a running daemon is the daemon's child and its exit code is known. Answers
 * `{"ok": true, "pid": N}` or `{"error": {"code", "message"}}`.
 *
 * The daemon acts only for a caller that is still there: a caller that hung up (it timed out, was killed) before
 * the create starts gets nothing done; one that hangs up during the create has it abandoned right before the
 * container's process is spawned; one gone by the time the answer is due (or whose answer cannot be written)
 * has the container deleted again (delete --force), so no container is left that nobody asked for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { acceptUnix, listenUnix, peerHungUp, recvFds, watchReadable } from '../kernel/index.js';
import { LifecycleError } from '../errors/index.js';
import { crashPoint } from './crash-points.js';
import { toLifecycleError } from './errors.js';
import { ociStateOf } from './queries.js';
import type { Supervisor } from './supervisor.js';

import { CONTROL_SOCKET, type ControlRequest } from './daemon-client.js';

/** Where the control socket reports what it did on its own (a request abandoned, an undo that failed). */
export type ControlLog = (message: string) => void;

/** Serve the control socket for `sup` until the returned function is called. */
export function serveControlSocket(sup: Supervisor, root: string, log: ControlLog = () => {}): () => void {
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
        void handle(sup, conn, log).finally(() => fs.closeSync(conn));
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

/** The caller hung up: the create is not (or no longer) wanted. */
class CallerGone extends LifecycleError {
  constructor(id: string, when: string) {
    super('SystemError', `control socket: create ${id}: the caller hung up ${when}; nothing is done for it`);
  }
}

async function handle(sup: Supervisor, conn: number, log: ControlLog): Promise<void> {
  let fds: number[] = [];
  let reply: unknown;
  let created: string | undefined;
  try {
    const msg = recvFds(conn, 64, 65536);
    fds = msg.fds;
    const req = JSON.parse(msg.data.toString('utf8')) as ControlRequest;
    if (req.verb !== 'create' || typeof req.id !== 'string' || typeof req.bundle !== 'string') throw new LifecycleError('BadRequest', 'bad request: expected {"verb":"create","id","bundle"}');
    const id = req.id;
    crashPoint('control-socket:before-create');
    // A caller that gave up while the daemon could not answer (stopped, busy) gets nothing done.
    if (peerHungUp(conn)) throw new CallerGone(id, 'before the create started');
    await sup.containers.create(id, {
      bundle: req.bundle, pidFile: req.pidFile, noPivot: req.noPivot, consoleSocket: req.consoleSocket, network: req.network,
      stdio: fds.length >= 3 ? fds.slice(0, 3) : undefined, extraFiles: fds.length > 3 ? fds.slice(3) : undefined,
      // The last moment before the step that matters (a process in the container): still wanted?
      beforeSpawn: () => {
        if (peerHungUp(conn)) throw new CallerGone(id, 'during the create, before its process was spawned');
      },
    });
    created = id;
    crashPoint('control-socket:after-create');
    reply = { ok: true, pid: ociStateOf(sup.containers.state, id).pid };
  } catch (e) {
    const err = toLifecycleError(e);
    if (e instanceof CallerGone) log(err.message);
    reply = { error: { code: err.code, message: err.message } };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  // A caller gone by now never learns of the container: it is deleted again rather than left to nobody.
  let delivered = !peerHungUp(conn);
  if (delivered) {
    try {
      const text = JSON.stringify(reply);
      crashPoint('control-socket:mid-answer', () => fs.writeSync(conn, text.slice(0, text.length >> 1)));
      fs.writeSync(conn, text);
    } catch {
      delivered = false; // EPIPE, ECONNRESET: the caller went away
    }
  }
  if (!delivered && created !== undefined) {
    const id = created;
    log(`control socket: create ${id}: the caller hung up before the answer; the container is deleted again`);
    await sup.containers.destroy(id, { force: true }).catch((e: unknown) => log(`control socket: create ${id}: deleting it again failed: ${toLifecycleError(e).message}`));
  }
}
