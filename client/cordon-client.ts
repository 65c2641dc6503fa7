/**
 * The client library for services that drive cordon over NATS: typed commands to any host's supervisor
 * (`cordon.<host>.cmd.<verb>`, with timeouts and CordonCommandError carrying the remote code), the event
 * stream CORDON_EVENTS as an rxjs Observable that resumes where it left off after a reconnect, and host
 * discovery through the NATS service discovery protocol ($SRV.PING.cordon).
 *
 *   const client = await CordonClient.connect({ servers: 'nats://10.0.0.5:4222' });
 *   for (const h of await client.hosts()) console.log(h.host);
 *   const node = client.host('node-a');
 *   await node.create({ id: 'web-1', bundle: '/srv/bundles/web' });
 *   await node.start({ id: 'web-1' });
 *   client.events$({ host: 'node-a', containerId: 'web-1' }).subscribe((e) => console.log(e.action));
 */
import { type NatsConnection, NoRespondersError, PermissionViolationError, TimeoutError } from '@nats-io/transport-node';
import { DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Observable, map } from 'rxjs';
import { type CommandReplies, type CommandRequests, type CommandVerb, COMMAND_VERBS, HOST_TOKEN, SERVICE_NAME, commandSubject, isErrorReply } from '../events/command-api.js';
import { type NatsOptions, connectNats } from '../events/nats-connection.js';
import { type CordonEvent, type EventAction, validateEvent } from '../events/schema.js';

export type { CommandReplies, CommandRequests, CommandVerb, CordonEvent };

/** The JetStream stream every host's events go to. */
export const EVENTS_STREAM = 'CORDON_EVENTS';

/** A command failed: `code` is the remote code (ContainerNotExists, bad-request, unsupported, ...) or a client one (timeout, no-responders, permission-denied). */
export class CordonCommandError extends Error {
  readonly code: string;
  readonly host: string;
  readonly verb: string;
  /** The request field at fault, when the service named one. */
  readonly field?: string;

  constructor(host: string, verb: string, code: string, message: string, field?: string) {
    super(`${host} ${verb}: ${message}`);
    this.name = 'CordonCommandError';
    this.host = host;
    this.verb = verb;
    this.code = code;
    this.field = field;
  }
}

/** Options of one command. */
export interface CommandOptions {
  /** Give up after this many ms (default: the client's, 10 s). */
  timeoutMs?: number;
}

/** One host's verbs as typed methods. */
export type HostCommands = { [V in CommandVerb]: (req: CommandRequests[V], opts?: CommandOptions) => Promise<CommandReplies[V]> };

/** A supervisor found by hosts(). */
export interface DiscoveredHost {
  host: string;
  /** Service instance id. */
  id: string;
  version: string;
  metadata: Record<string, string>;
}

/** Which events: host, container and action (each one value or any); one filter subject, so NATS 2.9 serves it. */
export interface StreamFilter {
  host?: string;
  containerId?: string;
  action?: EventAction;
}

/** Where events$ starts. */
export interface StreamStart {
  /** The stream sequence to start at (inclusive); default: only events stored after the call. */
  sinceSeq?: number;
  /** Called with a message whose payload is not a CordonEvent (it is skipped). */
  onInvalid?: (streamSeq: number, error: Error) => void;
}

/** An event with its position in CORDON_EVENTS (pass streamSeq + 1 as sinceSeq to continue after it). */
export interface PositionedEvent {
  streamSeq: number;
  event: CordonEvent;
}

/** Options of the client. */
export interface CordonClientOptions {
  /** Default command timeout in ms (default 10000). */
  timeoutMs?: number;
}

const token = (x: string | undefined, what: string): string => {
  if (x === undefined) return '*';
  if (!/^[^\s.*>]+$/.test(x)) throw new TypeError(`events$: ${what}: ${JSON.stringify(x)} cannot be one subject token`);
  return x;
};

/** The subject of a filter: `cordon.<host|*>.events.<container|*>.<action|*>`. */
export function eventSubject(f: StreamFilter = {}): string {
  return `cordon.${token(f.host, 'host')}.events.${token(f.containerId, 'containerId')}.${token(f.action, 'action')}`;
}

/** A typed client of cordon's NATS API. */
export class CordonClient {
  readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly owns: boolean;

  constructor(nc: NatsConnection, opts: CordonClientOptions & { ownsConnection?: boolean } = {}) {
    this.nc = nc;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.owns = opts.ownsConnection ?? false;
  }

  /** Connect with cordon's NATS options (user/pass, token, nkey, creds, TLS); close() closes the connection. */
  static async connect(opts: NatsOptions & CordonClientOptions): Promise<CordonClient> {
    return new CordonClient(await connectNats({ name: 'cordon-client', ...opts }), { timeoutMs: opts.timeoutMs, ownsConnection: true });
  }

  /** Send one command to `host`'s supervisor; resolves with the reply or throws CordonCommandError. */
  async request<V extends CommandVerb>(host: string, verb: V, req: CommandRequests[V], opts: CommandOptions = {}): Promise<CommandReplies[V]> {
    if (!HOST_TOKEN.test(host)) throw new CordonCommandError(host, verb, 'bad-request', `host: ${JSON.stringify(host)} is not a host id`, 'host');
    if (!(COMMAND_VERBS as readonly string[]).includes(verb)) throw new CordonCommandError(host, verb, 'unknown-verb', `unknown verb ${JSON.stringify(verb)}`);
    const subject = commandSubject(host, verb);
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    try {
      // A publish the server's permissions refuse fails the request at once (the client matches the -ERR to it).
      const m = await this.nc.request(subject, JSON.stringify(req), { timeout });
      const body: unknown = m.json();
      if (isErrorReply(body)) throw new CordonCommandError(host, verb, body.error.code, body.error.message, body.error.field);
      return body as CommandReplies[V];
    } catch (e) {
      if (e instanceof CordonCommandError) throw e;
      if (isPermissionViolation(e)) throw new CordonCommandError(host, verb, 'permission-denied', `not allowed to publish to ${subject} (${(e as Error).message})`);
      const cause = (e as Error).cause;
      if (e instanceof NoRespondersError || cause instanceof NoRespondersError) throw new CordonCommandError(host, verb, 'no-responders', `no supervisor answers ${subject}`);
      if (e instanceof TimeoutError || cause instanceof TimeoutError) throw new CordonCommandError(host, verb, 'timeout', `no reply within ${timeout} ms`);
      throw new CordonCommandError(host, verb, 'transport', (e as Error).message);
    }
  }

  /** `host`'s verbs as methods: `client.host('node-a').start({ id })`. */
  host(host: string): HostCommands {
    return Object.fromEntries(COMMAND_VERBS.map((v) => [v, (req: never, o?: CommandOptions) => this.request(host, v, req, o)])) as unknown as HostCommands;
  }

  /** Every supervisor that answers $SRV.PING.cordon within `waitMs` (default 500). */
  async hosts(opts: { waitMs?: number } = {}): Promise<DiscoveredHost[]> {
    const out: DiscoveredHost[] = [];
    const it = await this.nc.requestMany(`$SRV.PING.${SERVICE_NAME}`, '', { strategy: 'timer', maxWait: opts.waitMs ?? 500 });
    for await (const m of it) {
      try {
        const p = m.json<{ type?: string; id: string; version: string; metadata?: Record<string, string> }>();
        if (p.type !== 'io.nats.micro.v1.ping_response') continue;
        out.push({ host: p.metadata?.host ?? '', id: p.id, version: p.version, metadata: p.metadata ?? {} });
      } catch {
        // not JSON: not a cordon supervisor
      }
    }
    return out.sort((a, b) => a.host.localeCompare(b.host) || a.id.localeCompare(b.id));
  }

  /**
   * Events of CORDON_EVENTS matching `filter`, with their stream positions, from `sinceSeq` (default: from
   * now). An ordered consumer reads them; when it breaks (server restart, lost connection) a new one starts
   * right after the last delivered sequence, so a subscriber sees no gap and no duplicate.
   */
  positionedEvents$(filter: StreamFilter = {}, start: StreamStart = {}): Observable<PositionedEvent> {
    const subject = eventSubject(filter);
    return new Observable<PositionedEvent>((sub) => {
      let stopped = false;
      let last = start.sinceSeq !== undefined ? Math.max(0, start.sinceSeq - 1) : -1;
      let current: { stop(): void } | undefined;
      let wake: () => void = () => {};
      const pause = (ms: number) =>
        new Promise<void>((r) => {
          const t = setTimeout(r, ms);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      const run = async () => {
        const js = jetstream(this.nc);
        while (!stopped) {
          try {
            if (last < 0) last = (await (await jetstreamManager(this.nc)).streams.info(EVENTS_STREAM)).state.last_seq;
            const c = await js.consumers.get(EVENTS_STREAM, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: last + 1 });
            const msgs = await c.consume({ max_messages: 256 });
            current = msgs;
            if (stopped) msgs.stop();
            for await (const m of msgs) {
              if (m.seq <= last) continue; // already delivered before a restart
              last = m.seq;
              const ev = parse(m);
              if (ev instanceof Error) start.onInvalid?.(m.seq, ev);
              else sub.next({ streamSeq: m.seq, event: ev });
            }
          } catch (e) {
            if (stopped) break;
            if (/stream not found/i.test((e as Error).message) && !this.nc.isClosed()) {
              sub.error(new Error(`events$: stream ${EVENTS_STREAM} does not exist`));
              return;
            }
          }
          if (this.nc.isClosed()) {
            if (!stopped) sub.complete();
            return;
          }
          if (!stopped) await pause(250);
        }
      };
      void run();
      return () => {
        stopped = true;
        current?.stop();
        wake();
      };
    });
  }

  /** Events of CORDON_EVENTS matching `filter` (see positionedEvents$). */
  events$(filter: StreamFilter = {}, start: StreamStart = {}): Observable<CordonEvent> {
    return this.positionedEvents$(filter, start).pipe(map((p) => p.event));
  }

  /** Close the connection if the client opened it. */
  async close(): Promise<void> {
    if (this.owns) await this.nc.close();
  }
}

/** A publish permission violation, as the error itself or as the cause of a request's error. */
function isPermissionViolation(e: unknown): boolean {
  const is = (x: unknown) => x instanceof PermissionViolationError || (x as Error | undefined)?.name === 'PermissionViolationError';
  return is(e) || is((e as Error | undefined)?.cause);
}

function parse(m: JsMsg): CordonEvent | Error {
  try {
    return validateEvent(m.json());
  } catch (e) {
    return e as Error;
  }
}
