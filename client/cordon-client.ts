/**
 * The client library for services that drive cordon over NATS: typed commands to any host's supervisor
 * (`cordon.<host>.cmd.<verb>`, with timeouts and CordonCommandError carrying the remote code; see
 * command-client.ts), host discovery through the NATS service discovery protocol ($SRV.PING.cordon), and the
 * event stream CORDON_EVENTS as an rxjs Observable that resumes where it left off after a reconnect.
 *
 *   const client = await CordonClient.connect({ servers: 'nats://10.0.0.5:4222' });
 *   for (const h of await client.hosts()) console.log(h.host);
 *   const node = client.host('node-a');
 *   await node.create({ id: 'web-1', bundle: '/srv/bundles/web' });
 *   await node.start({ id: 'web-1' });
 *   client.events$({ host: 'node-a', containerId: 'web-1' }).subscribe((e) => console.log(e.action));
 */
import { DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Observable, map } from 'rxjs';
import { type NatsOptions, connectNats } from '../events/nats-connection.js';
import { type CordonEvent, type EventAction, validateEvent } from '../events/schema.js';
import { EVENTS_STREAM } from '../events/jetstream-log.js';
import { CommandClient, type CordonClientOptions } from './command-client.js';

export { CommandClient, CordonCommandError, type CommandOptions, type CordonClientOptions, type DiscoveredHost, type HostCommands } from './command-client.js';
export type { CommandReplies, CommandRequests, CommandVerb } from './command-client.js';
export type { CordonEvent };

/** The JetStream stream every host's events go to. */
export { EVENTS_STREAM };

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

const token = (x: string | undefined, what: string): string => {
  if (x === undefined) return '*';
  if (!/^[^\s.*>]+$/.test(x)) throw new TypeError(`events$: ${what}: ${JSON.stringify(x)} cannot be one subject token`);
  return x;
};

/** The subject of a filter: `cordon.<host|*>.events.<container|*>.<action|*>`. */
export function eventSubject(f: StreamFilter = {}): string {
  return `cordon.${token(f.host, 'host')}.events.${token(f.containerId, 'containerId')}.${token(f.action, 'action')}`;
}

/** A typed client of cordon's NATS API: commands, host discovery, events. */
export class CordonClient extends CommandClient {
  /** Connect with cordon's NATS options (user/pass, token, nkey, creds, TLS); close() closes the connection. */
  static override async connect(opts: NatsOptions & CordonClientOptions): Promise<CordonClient> {
    return new CordonClient(await connectNats({ name: 'cordon-client', ...opts }), { timeoutMs: opts.timeoutMs, commandToken: opts.commandToken, ownsConnection: true });
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
}

function parse(m: JsMsg): CordonEvent | Error {
  try {
    return validateEvent(m.json());
  } catch (e) {
    return e as Error;
  }
}
