/**
 * Watching the container machines live: xstate inspection events of every container actor go to the Stately
 * inspector over a WebSocket (@statelyai/inspect's createInspector: the same events and wire format as its
 * createWebSocketInspector, e.g. to `createInspectorServer()` from @statelyai/inspect/server), and every
 * snapshot is also published on `cordon.<host>.inspect.<containerId>` for tools without a browser.
 *
 *   const insp = startInspection({ host: 'node-a', nc, url: 'ws://localhost:8080' });
 *   const sup = await Supervisor.start({ root, host: 'node-a', inspect: insp.inspect });
 *   ...
 *   insp.stop();
 *
 * Why not createWebSocketInspector itself: its adapter retries a failed connection every 5 s on a timer that
 * stop() does not cancel, so a process whose inspector is not running could never exit. The adapter here
 * reconnects on an unref'd timer that stop() clears.
 */
import { createRequire } from 'node:module';
import type { NatsConnection } from '@nats-io/transport-node';
import { type StatelyInspectionEvent, createInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';

/** Options of startInspection. */
export interface InspectionOptions {
  /** Host id (the subject token in `cordon.<host>.inspect.<containerId>`). */
  host: string;
  /** Publish every snapshot on NATS. */
  nc?: NatsConnection;
  /** The Stately inspector's WebSocket (e.g. ws://localhost:8080 of createInspectorServer). */
  url?: string;
  /** Reconnect delay after the inspector's socket closed or failed (default 2000 ms). */
  reconnectMs?: number;
  /** Connection and publish failures (inspection never disturbs supervision). */
  onError?: (e: Error) => void;
}

/** A running inspection: pass `inspect` to Supervisor.start, stop() when done. */
export interface Inspection {
  inspect: Observer<InspectionEvent>;
  stop(): void;
}

/** What `cordon.<host>.inspect.<containerId>` carries: one machine snapshot. */
export interface InspectedSnapshot {
  host: string;
  containerId: string;
  /** The machine state (created, running, ...). */
  state: unknown;
  status: string;
  context: unknown;
  /** The event that led to it. */
  event: string;
  time: string;
}

/** The part of the `ws` package's WebSocket used here (ws ships no types of its own). */
interface Socket {
  readonly readyState: number;
  on(ev: 'open' | 'close', f: () => void): void;
  on(ev: 'error', f: (e: Error) => void): void;
  send(data: string): void;
  terminate(): void;
}

const OPEN = 1;
const MAX_QUEUED = 200;

const json = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/** A Stately inspector adapter over a WebSocket that stops for good on stop(). */
class InspectorSocket {
  private ws?: Socket;
  private readonly queue: string[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly reconnectMs: number,
    private readonly onError: (e: Error) => void,
  ) {}

  start(): void {
    if (this.stopped || this.ws) return;
    const WebSocket = createRequire(import.meta.url)('ws') as new (url: string) => Socket;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on('open', () => {
      for (const m of this.queue.splice(0)) ws.send(m);
    });
    ws.on('error', (e) => this.onError(e));
    ws.on('close', () => {
      this.ws = undefined;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.start(), this.reconnectMs);
      this.timer.unref();
    });
  }

  send(event: StatelyInspectionEvent): void {
    const text = json(event);
    if (this.ws?.readyState === OPEN) this.ws.send(text);
    else if (this.queue.push(text) > MAX_QUEUED) this.queue.shift();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.terminate();
    this.ws = undefined;
  }
}

/** The container id of an inspected actor's snapshot (container machines have context.id). */
function containerIdOf(snapshot: unknown): string | undefined {
  const ctx = (snapshot as { context?: { id?: unknown; containerId?: unknown } } | undefined)?.context;
  const id = ctx?.id ?? ctx?.containerId;
  return typeof id === 'string' ? id : undefined;
}

/** Start inspecting: returns the observer for xstate's `inspect` option and stop(). */
export function startInspection(opts: InspectionOptions): Inspection {
  const onError = opts.onError ?? (() => {});
  const socket = opts.url ? new InspectorSocket(opts.url, opts.reconnectMs ?? 2000, onError) : undefined;
  const stately = socket ? createInspector(socket, { autoStart: false }) : undefined;
  socket?.start();
  let stopped = false;
  const publish = (e: InspectionEvent) => {
    if (!opts.nc || e.type !== '@xstate.snapshot') return;
    const containerId = containerIdOf(e.snapshot);
    if (!containerId || !/^[^\s.*>]+$/.test(containerId)) return;
    const s = e.snapshot as { value?: unknown; status?: string; context?: unknown };
    const body: InspectedSnapshot = { host: opts.host, containerId, state: s.value, status: s.status ?? 'active', context: s.context, event: e.event.type, time: new Date().toISOString() };
    opts.nc.publish(`cordon.${opts.host}.inspect.${containerId}`, json(body));
  };
  return {
    inspect: {
      next(e) {
        if (stopped) return;
        try {
          stately?.inspect.next?.(e);
          publish(e);
        } catch (err) {
          onError(err as Error);
        }
      },
    },
    stop() {
      stopped = true;
      stately?.stop();
    },
  };
}
