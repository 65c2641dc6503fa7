/**
 * The daemon's outbox: the local journal stays the write path of every cordon process, and this publisher
 * forwards its events to JetStream in order, one at a time, with the event id as msgID. On every
 * (re)connect it asks the stream for the host's last event and continues after it, so events appended while
 * NATS was away go out when it returns, without gaps or duplicates. It holds the host's lease while it
 * runs. At start it also restores: a journal that is behind the stream (an empty state dir) gets the
 * host's events imported, keeping their seq, before the supervisor replays it.
 */
import { LifecycleError } from '../errors/index.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { HostLease, HostLeaseHeldError, HostLeaseLostError, checkHostId } from './host-lease.js';
import type { JournalStore } from './journal.js';
import { type EventsJetStream, ensureEventsStream, eventsJetStream, lastHostEvent, publishEvent, readHostEvents } from './jetstream-log.js';
import { type NatsOptions, connectNats } from './nats-connection.js';
import type { CordonEvent } from './schema.js';

/** The journal and the stream disagree about the host's history (another journal wrote this host id). */
export class HostLogDivergedError extends LifecycleError {
  readonly host: string;
  readonly seq: number;
  constructor(host: string, seq: number, why: string) {
    super('HostLogDiverged', `host ${host}: the local journal and JetStream disagree at event ${seq}: ${why}; not publishing`);
    this.name = 'HostLogDivergedError';
    this.host = host;
    this.seq = seq;
  }
}

/** Options of JetStreamOutbox.start. */
export interface OutboxOptions {
  journal: JournalStore;
  host: string;
  nats: NatsOptions;
  /** Replicas of the stream and the lease bucket when the outbox creates them (default 1). */
  replicas?: number;
  leaseTtlMs?: number;
  /** How long a publish waits for its ack before it is retried (default 2000 ms). */
  publishTimeoutMs?: number;
  /** Longest wait between retries while NATS is away (default 2000 ms). */
  maxBackoffMs?: number;
  /** Problems worth logging (NATS away, lease taken, divergence); the outbox keeps going where it can. */
  onError?: (e: Error) => void;
}

/** What start-up did. */
export interface OutboxStartReport {
  /** Whether NATS answered at start. */
  connected: boolean;
  /** Events imported from JetStream into the journal (restore). */
  imported: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const fatal = (e: unknown) => e instanceof HostLeaseLostError || e instanceof HostLogDivergedError;

/** Forwards a host's journal to JetStream. */
export class JetStreamOutbox {
  readonly host: string;
  readonly report: OutboxStartReport = { connected: false, imported: 0 };
  private readonly o: OutboxOptions;
  private nc?: NatsConnection;
  private j?: EventsJetStream;
  private lease?: HostLease;
  /** Host seq known to be in JetStream. */
  private cursor = 0;
  private synced = false;
  private stopped = false;
  private failure?: Error;
  private wakeUp: () => void = () => {};
  private readonly waiters = new Set<() => void>();
  private unsubscribe: () => void = () => {};
  private loop?: Promise<void>;
  /** False between a disconnect and the next reconnect: no point in trying until then. */
  private connected = false;
  private reconnected: () => void = () => {};

  private constructor(o: OutboxOptions) {
    this.o = o;
    this.host = checkHostId(o.host);
  }

  /**
   * Connect (once, without waiting for NATS), take the lease — HostLeaseHeldError when a live supervisor
   * has it — restore the journal if JetStream is ahead, then forward in the background.
   */
  static async start(o: OutboxOptions): Promise<JetStreamOutbox> {
    const ob = new JetStreamOutbox(o);
    try {
      await ob.connect();
      ob.report.connected = true;
      await ob.sync(true);
    } catch (e) {
      if (e instanceof HostLeaseHeldError || e instanceof HostLogDivergedError) {
        await ob.closeConnection();
        throw e;
      }
      ob.o.onError?.(new Error(`NATS at ${String(o.nats.servers)} is not reachable (${(e as Error).message}); events stay in the journal until it is`));
    }
    ob.unsubscribe = o.journal.subscribe(() => ob.wakeUp());
    ob.loop = ob.run();
    return ob;
  }

  /** Host seq of the last event known to be in JetStream. */
  get publishedSeq(): number {
    return this.cursor;
  }

  /** Why forwarding stopped for good (lease lost, divergence), if it did. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Resolves when every event up to `seq` is in JetStream (rejects after timeoutMs). */
  waitPublished(seq: number, timeoutMs = 30_000): Promise<void> {
    if (this.cursor >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.cursor >= seq) done(resolve);
        else if (this.failure) done(() => reject(this.failure));
      };
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      const timer = setTimeout(() => done(() => reject(new Error(`outbox: event ${seq} not published within ${timeoutMs} ms (published ${this.cursor})`))), timeoutMs);
      this.waiters.add(check);
    });
  }

  private async connect(): Promise<void> {
    if (!this.nc || this.nc.isClosed()) {
      const nc = await connectNats({ name: `cordon-outbox-${this.host}`, ...this.o.nats, reconnectForever: true });
      this.nc = nc;
      this.connected = true;
      void (async () => {
        for await (const st of nc.status()) {
          if (st.type === 'disconnect') this.connected = false;
          else if (st.type === 'reconnect') {
            this.connected = true;
            this.reconnected();
          }
        }
      })().catch(() => {});
    }
    // API requests time out like publishes: one sent into a dying connection must not hold the loop for long.
    this.j ??= await eventsJetStream(this.nc, this.o.publishTimeoutMs ?? 2000); // fails while a cluster has no JetStream leader yet: retried
  }

  /**
   * Hold the lease, find the host's last event in JetStream and check it against the journal; at start a
   * journal behind the stream is filled from it (restore).
   */
  private async sync(atStart: boolean): Promise<void> {
    const j = this.j as EventsJetStream;
    await ensureEventsStream(j.jsm, { replicas: this.o.replicas });
    if (!this.lease) {
      this.lease = await HostLease.acquire(j.nc, this.host, { ttlMs: this.o.leaseTtlMs, replicas: this.o.replicas, onLost: (e) => this.o.onError?.(e) });
    } else await this.lease.renew();
    const last = await lastHostEvent(j.jsm, this.host);
    const journal = this.o.journal;
    journal.refresh();
    const have = journal.lastSeq();
    if (last && last.event.seq > have) {
      if (!atStart) throw new HostLogDivergedError(this.host, have + 1, `JetStream has events up to ${last.event.seq}, the journal up to ${have}`);
      await this.restore(last.event.seq, have);
    } else if (last) {
      // None: that seq is one the journal quarantined (damaged after it was published).
      const [mine] = await journal.read(last.event.seq, last.event.seq);
      if (mine && mine.id !== last.event.id) throw new HostLogDivergedError(this.host, last.event.seq, `event ids ${mine.id} (journal) and ${last.event.id} (JetStream)`);
    }
    this.cursor = last?.event.seq ?? 0;
    this.synced = true;
    this.notify();
  }

  /** Import the host's events after `have` from JetStream into the journal, keeping their seq. */
  private async restore(until: number, have: number): Promise<void> {
    const j = this.j as EventsJetStream;
    const events: CordonEvent[] = [];
    const [mineLast] = have > 0 ? await this.o.journal.read(have, have) : [];
    let agrees = have === 0 || mineLast === undefined;
    await readHostEvents(j.js, this.host, until, ({ event }) => {
      if (have > 0 && event.seq === have && mineLast) agrees = event.id === mineLast.id;
      // Seqs rise with gaps where the publishing journal quarantined damage: importEvents marks those.
      if (event.seq > (events.at(-1)?.seq ?? have)) events.push(event);
    });
    if (!agrees) throw new HostLogDivergedError(this.host, have, 'the journal ends with an event JetStream does not have');
    await this.o.journal.importEvents(events);
    this.report.imported = events.length;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Forward until stopped: publish what the journal has beyond the cursor, wait for more, retry while NATS is away. */
  private async run(): Promise<void> {
    let backoff = 100;
    let reported = false;
    while (!this.stopped) {
      try {
        if (!this.j) await this.connect();
        if (!this.synced) await this.sync(false);
        const pending = await this.o.journal.read(this.cursor + 1);
        if (pending.length === 0) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 1000); // also catch appends a file watch missed
            this.wakeUp = () => {
              clearTimeout(t);
              resolve();
            };
          });
          continue;
        }
        for (const e of pending) {
          if (this.stopped) return;
          if (this.lease && !this.lease.isHeld) throw new HostLeaseLostError(this.host, 'not publishing');
          await publishEvent((this.j as EventsJetStream).js, this.host, e.host === this.host ? e : { ...e, host: this.host }, this.o.publishTimeoutMs ?? 2000);
          this.cursor = e.seq;
          this.notify();
        }
        backoff = 100;
        reported = false;
      } catch (e) {
        if (this.stopped) return;
        if (fatal(e)) {
          this.failure = e as Error;
          this.o.onError?.(e as Error);
          this.notify();
          return;
        }
        this.synced = false;
        if (!reported) this.o.onError?.(new Error(`publishing events to JetStream: ${(e as Error).message}; retrying`));
        reported = true;
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, this.o.maxBackoffMs ?? 2000);
      }
    }
  }

  /** Wait `ms`, or while disconnected until the client reconnects (whichever is first after `ms` when connected). */
  private pause(ms: number): Promise<void> {
    if (this.connected || !this.nc) return sleep(ms);
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(ms, 10_000)); // a long stop as a safety net: reconnects are announced
      this.reconnected = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async closeConnection(): Promise<void> {
    await this.lease?.release().catch(() => {});
    await this.nc?.close().catch(() => {});
  }

  /** Stop forwarding (what is not yet published stays in the journal for the next start), release the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.wakeUp();
    this.reconnected();
    await this.loop;
    await this.closeConnection();
  }
}
