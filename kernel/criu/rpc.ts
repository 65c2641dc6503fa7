/**
 * One CRIU RPC session: `criu swrk 3` spawned with one end of a SOCK_SEQPACKET socketpair as its fd 3, ONE
 * request sent, notify messages answered (criu_req NOTIFY with notify_success) until the final criu_resp, then
 * criu's exit awaited. Readiness comes from the event loop (koffi's poll through watchReadable): nothing
 * blocks and nothing spins.
 */
import { spawn } from 'node:child_process';
import { closeFd, watchReadable, type ReadableWatch } from '../io/fd.js';
import { recvPacket, sendPacket, seqpacketPair, type Packet } from '../io/unix-socket.js';
import { decodeResponse, encodeRequest, type CriuReqMessage, type CriuRespMessage } from './proto.js';

/** A notify message CRIU sent (criu_notify), with an fd when it came with one (orphan-pts-master). */
export interface RpcNotify {
  script: string;
  pid?: number;
  fd?: number;
}

/** What a session needs. */
export interface RpcSessionOptions {
  /** The criu binary. */
  criu: string;
  /** The request. */
  request: CriuReqMessage;
  /** Fds of this process criu gets as its fds 4, 5, ... (inherit_fd): index i becomes fd 4 + i. */
  passFds?: readonly number[];
  /** Answer a notify: resolve for success, reject to make CRIU fail. Absent: every notify succeeds. */
  onNotify?: (n: RpcNotify) => Promise<void>;
  /** Variables added to criu's environment. */
  env?: Record<string, string>;
  /** Kill criu (SIGKILL) when the exchange has not ended after this many ms (default: no limit). */
  timeoutMs?: number;
}

/** What a session ends with. */
export interface RpcResult {
  /** CRIU's final response (success or not). */
  response?: CriuRespMessage;
  /** criu's exit: code, or the signal that killed it. */
  exit: { code: number | null; signal: NodeJS.Signals | null };
  /** The last lines criu wrote on stdout/stderr (mostly empty: it logs to its log file). */
  output: string;
  /** The first notify that was rejected by onNotify, if any. */
  notifyError?: unknown;
  /** Why the exchange broke off (criu hung up before answering, a message that did not decode), if it did. */
  protocolError?: Error;
}

/** The fd number criu gets for `passFds[i]`. */
export const passedFd = (i: number): number => 4 + i;

/** Run one request through `criu swrk 3`. Rejects only when criu cannot be started at all. */
export function runRpc(o: RpcSessionOptions): Promise<RpcResult> {
  const [mine, theirs] = seqpacketPair();
  let child;
  try {
    child = spawn(o.criu, ['swrk', '3'], { stdio: ['ignore', 'pipe', 'pipe', theirs, ...(o.passFds ?? [])], env: { ...process.env, ...o.env } });
  } catch (e) {
    closeFd(mine);
    closeFd(theirs);
    throw e;
  }
  closeFd(theirs);

  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  return new Promise<RpcResult>((resolve, reject) => {
    let response: CriuRespMessage | undefined;
    let notifyError: unknown;
    let protocolError: Error | undefined;
    let watch: ReadableWatch | undefined;
    let busy = false; // a notify is being answered: CRIU waits for us, read nothing meanwhile
    let done = false; // the final response came, or the exchange broke off
    let socketOpen = true;
    let exit: RpcResult['exit'] | undefined;
    let streamsOpen = 2;

    const closeSocket = () => {
      if (!socketOpen) return;
      socketOpen = false;
      watch?.close();
      closeFd(mine);
    };
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            protocolError ??= new Error(`timed out: no final response from criu within ${o.timeoutMs} ms`);
            child.kill('SIGKILL');
          }, o.timeoutMs);
    const finish = () => {
      if (!exit || streamsOpen > 0 || socketOpen) return;
      if (timer) clearTimeout(timer);
      resolve({ response, exit, output: output.split('\n').slice(-20).join('\n').trim(), notifyError, protocolError });
    };
    const end = (err?: Error) => {
      if (err && !protocolError) protocolError = err;
      done = true;
      closeSocket();
      finish();
    };

    const onPacket = (p: Packet) => {
      if (p.eof) return end(response ? undefined : new Error('criu closed the RPC socket before its final response'));
      let msg: CriuRespMessage;
      try {
        msg = decodeResponse(p.data);
      } catch (e) {
        p.fds.forEach((fd) => closeFd(fd));
        return end(new Error(`undecodable message from criu (${p.data.length} bytes): ${(e as Error).message}`));
      }
      if (msg.type !== 'NOTIFY') {
        p.fds.forEach((fd) => closeFd(fd));
        response = msg;
        return end();
      }
      busy = true;
      const n: RpcNotify = { script: msg.notify?.script ?? '' };
      if (msg.notify?.pid !== undefined) n.pid = msg.notify.pid;
      if (p.fds.length) n.fd = p.fds[0];
      p.fds.slice(1).forEach((fd) => closeFd(fd));
      // A callback that throws instead of rejecting fails the notify the same way. Without a callback an fd
      // that came along is closed here.
      Promise.resolve()
        .then(() => {
          if (o.onNotify) return o.onNotify(n);
          if (n.fd !== undefined) closeFd(n.fd);
        })
        .then(
          () => true,
          (e: unknown) => {
            notifyError ??= e;
            return false;
          },
        )
        .then((ok) => {
          busy = false;
          if (done) return;
          try {
            sendPacket(mine, encodeRequest({ type: 'NOTIFY', notify_success: ok }));
          } catch (e) {
            return end(e as Error);
          }
          drain();
        });
    };

    const drain = () => {
      while (!busy && !done) {
        let p: Packet | null;
        try {
          p = recvPacket(mine);
        } catch (e) {
          return end(e as Error);
        }
        if (!p) return;
        onPacket(p);
      }
    };

    child.once('error', (e) => {
      // spawn failed (ENOENT, EACCES): no exit event follows.
      done = true;
      if (timer) clearTimeout(timer);
      closeSocket();
      reject(Object.assign(new Error(`spawn ${o.criu} swrk 3: ${(e as NodeJS.ErrnoException).code ?? e.message}`), { cause: e }));
    });
    child.once('spawn', () => {
      try {
        sendPacket(mine, encodeRequest(o.request));
      } catch (e) {
        end(e as Error);
        return;
      }
      watch = watchReadable(mine, drain);
    });
    for (const s of [child.stdout, child.stderr]) {
      if (!s) streamsOpen--;
      else
        s.once('close', () => {
          streamsOpen--;
          finish();
        });
    }
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // Anything criu sent before exiting is still queued: read it, then the hangup ends the exchange.
      if (!done && !busy) drain();
      // Gone while a notify was being answered (killed at the deadline, crashed): nothing more will come.
      if (!done) end(response ? undefined : new Error('criu exited before its final response'));
      finish();
    });
  });
}
