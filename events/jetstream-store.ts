/**
 * The EventStore on JetStream: a host's events in the stream CORDON_EVENTS, numbered by this store (the
 * host's single writer, enforced by the HostLease in CORDON_HOSTS), published in order one at a time with
 * the event id as msgID, so a retry after a lost ack is never stored twice and no event overtakes another.
 * JetStream 2.9 has no atomic multi-message publish: a batch whose publish fails part-way keeps the events
 * stored before the failure (announced to subscribers) and append rejects.
 */
import { EventEmitter } from 'eventemitter3';
import type { NatsConnection } from '@nats-io/transport-node';
import { HostLease, HostLeaseLostError, checkHostId } from './host-lease.js';
import { type EventsJetStream, ensureEventsStream, eventsJetStream, lastHostEvent, publishEvent, readHostEvents } from './jetstream-log.js';
import { type NatsOptions, connectNats } from './nats-connection.js';
import { type CordonEvent, type NewEvent, validateEvent } from './schema.js';
import { type AppendOptions, ConcurrencyError, type EventStore } from './store.js';

/** Options of JetStreamStore.open. */
export interface JetStreamStoreOptions {
  /** The host whose log this is (a subject token). */
  host: string;
  /** Where NATS is (a connection is opened and closed by the store) ... */
  nats?: NatsOptions;
  /** ... or a connection to use (left open on close). */
  connection?: NatsConnection;
  /** Replicas of the stream and the lease bucket when this store creates them (default 1). */
  replicas?: number;
  /** Lease TTL (default 15 s). */
  leaseTtlMs?: number;
  /** Attempts per publish before append fails (default 5; the same msgID each time). */
  publishAttempts?: number;
  /** How long each attempt waits for its ack (default 5000 ms). */
  publishTimeoutMs?: number;
}

/** The JetStream event store of one host. */
export class JetStreamStore implements EventStore {
  readonly host: string;
  readonly lease: HostLease;
  private readonly j: EventsJetStream;
  private readonly ownsConnection: boolean;
  private seq = 0;
  private readonly perContainer = new Map<string, number>();
  /** Stream sequence of host seq k at index k - 1 (reads start anywhere). */
  private readonly streamSeqs: number[] = [];
  private readonly bus = new EventEmitter<{ event: [CordonEvent] }>();
  private queue: Promise<unknown> = Promise.resolve();
  /** A failed append may still reach the stream (a publish buffered across a reconnect): look before the next one. */
  private uncertain = false;
  private readonly attempts: number;
  private readonly timeoutMs: number;

  private constructor(host: string, j: EventsJetStream, lease: HostLease, ownsConnection: boolean, attempts: number, timeoutMs: number) {
    this.host = host;
    this.j = j;
    this.lease = lease;
    this.ownsConnection = ownsConnection;
    this.attempts = attempts;
    this.timeoutMs = timeoutMs;
  }

  /** Connect, make sure the stream exists, take the host's lease (HostLeaseHeldError if held) and load its events. */
  static async open(o: JetStreamStoreOptions): Promise<JetStreamStore> {
    checkHostId(o.host);
    if (!o.connection && !o.nats) throw new Error('JetStreamStore.open: needs nats options or a connection');
    const nc = o.connection ?? (await connectNats(o.nats as NatsOptions));
    try {
      const j = await eventsJetStream(nc);
      await ensureEventsStream(j.jsm, { replicas: o.replicas });
      const lease = await HostLease.acquire(nc, o.host, { ttlMs: o.leaseTtlMs, replicas: o.replicas });
      const s = new JetStreamStore(o.host, j, lease, !o.connection, o.publishAttempts ?? 5, o.publishTimeoutMs ?? 5000);
      try {
        await s.catchUp();
      } catch (e) {
        await lease.release();
        throw e;
      }
      return s;
    } catch (e) {
      if (!o.connection) await nc.close().catch(() => {});
      throw e;
    }
  }

  /** Read what the stream has beyond our last known event (at open, and after an uncertain publish). */
  private async catchUp(): Promise<void> {
    const last = await lastHostEvent(this.j.jsm, this.host);
    if (!last || last.event.seq <= this.seq) return;
    const from = this.seq > 0 ? this.streamSeqs[this.seq - 1] + 1 : undefined;
    await readHostEvents(this.j.js, this.host, last.event.seq, ({ event, streamSeq }) => {
      if (event.seq !== this.seq + 1) return; // a duplicate publish from an older writer
      this.seq = event.seq;
      this.streamSeqs.push(streamSeq);
      this.perContainer.set(event.containerId, event.containerSeq);
      this.bus.emit('event', event); // a publish whose append was reported failed but reached the stream after all
    }, from);
  }

  append(events: NewEvent[], opts: AppendOptions = {}): Promise<CordonEvent[]> {
    const run = this.queue.then(() => this.appendNow(events, opts));
    this.queue = run.catch(() => {});
    return run;
  }

  private async appendNow(events: NewEvent[], opts: AppendOptions): Promise<CordonEvent[]> {
    if (events.length === 0) return [];
    const containerId = events[0].containerId;
    if (events.some((e) => e.containerId !== containerId)) throw new Error('append: one container per batch');
    if (!this.lease.isHeld) throw new HostLeaseLostError(this.host, 'refusing to append');
    if (this.uncertain) {
      await this.catchUp();
      this.uncertain = false;
    }
    const current = this.perContainer.get(containerId) ?? 0;
    if (opts.expectedContainerSeq !== undefined && opts.expectedContainerSeq !== current) {
      throw new ConcurrencyError(containerId, opts.expectedContainerSeq, current);
    }
    const out = events.map((e, i) => validateEvent({ ...e, seq: this.seq + 1 + i, containerSeq: current + 1 + i }));
    for (const e of out) {
      const streamSeq = await this.publish(e);
      this.seq = e.seq;
      this.streamSeqs.push(streamSeq);
      this.perContainer.set(containerId, e.containerSeq);
      this.bus.emit('event', e); // as each is stored: a batch cut short by a failure still announces its stored prefix
    }
    return out;
  }

  /** Publish with retries (same msgID: a stored-but-unacknowledged try is not stored again). */
  private async publish(e: CordonEvent): Promise<number> {
    let lastErr: unknown;
    for (let i = 0; i < this.attempts; i++) {
      try {
        return (await publishEvent(this.j.js, this.host, e, this.timeoutMs)).streamSeq;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** i)));
      }
    }
    this.uncertain = true;
    throw new Error(`publish of event ${e.seq} (${e.containerId} ${e.action}) to JetStream failed: ${(lastErr as Error).message}`);
  }

  async read(fromSeq = 1): Promise<CordonEvent[]> {
    const first = Math.max(1, fromSeq);
    const until = this.seq;
    if (first > until) return [];
    const out: CordonEvent[] = [];
    await readHostEvents(this.j.js, this.host, until, ({ event }) => {
      if (event.seq === first + out.length) out.push(event);
    }, this.streamSeqs[first - 1]);
    return out;
  }

  subscribe(listener: (e: CordonEvent) => void): () => void {
    // The lease makes this store the host's only writer: every new event passes through append here.
    this.bus.on('event', listener);
    return () => void this.bus.off('event', listener);
  }

  lastSeq(): number {
    return this.seq;
  }

  containerSeq(containerId: string): number {
    return this.perContainer.get(containerId) ?? 0;
  }

  async close(): Promise<void> {
    await this.queue;
    this.bus.removeAllListeners();
    await this.lease.release();
    if (this.ownsConnection) await this.j.nc.close().catch(() => {});
  }
}
