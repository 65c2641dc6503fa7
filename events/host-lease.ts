/**
 * The single-writer lease of a host's event log in JetStream: one key per host id in the KV bucket
 * CORDON_HOSTS, created by the holder, renewed by compare-and-set on its revision (heartbeat), and gone
 * when the holder stops heartbeating (the bucket's TTL) or releases it. A second supervisor with the same
 * host id is refused with HostLeaseHeldError instead of interleaving its events with the first one's.
 */
import { LifecycleError } from '../errors/index.js';
import fs from 'node:fs';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { type KV, Kvm } from '@nats-io/kv';

/** The KV bucket that holds one lease per host id. */
export const HOSTS_BUCKET = 'CORDON_HOSTS';

/** A host id is one NATS subject token and a KV key: letters, digits, `-` and `_`. */
export const HOST_ID = /^[A-Za-z0-9_-]+$/;

/** A host id that cannot be a subject token. */
export class HostIdError extends LifecycleError {
  readonly host: string;
  constructor(host: string) {
    super('BadRequest', `host id ${JSON.stringify(host)}: must be letters, digits, "-" or "_" (it is a NATS subject token and a KV key); pass --host ID`, { field: 'host' });
    this.name = 'HostIdError';
    this.host = host;
  }
}

/** Throw HostIdError unless `host` is a usable host id. */
export function checkHostId(host: string): string {
  if (!HOST_ID.test(host)) throw new HostIdError(host);
  return host;
}

/** What a lease records about its holder. */
export interface LeaseHolder {
  /** Random id of the holding lease object. */
  holder: string;
  pid: number;
  /** The machine's hostname and boot id (a holder on this machine whose pid is gone is stale). */
  machine: string;
  bootId: string;
  since: string;
  heartbeat: string;
}

/** Another live supervisor holds the host's lease: refuse to write its log. */
export class HostLeaseHeldError extends LifecycleError {
  readonly host: string;
  readonly holder: LeaseHolder;
  constructor(host: string, holder: LeaseHolder) {
    super('HostLeaseHeld', `host ${host}: its event log is held by another supervisor (pid ${holder.pid} on ${holder.machine}, since ${holder.since}, last heartbeat ${holder.heartbeat}); stop it or use another --host`);
    this.name = 'HostLeaseHeldError';
    this.host = host;
    this.holder = holder;
  }
}

/** The lease was taken by another supervisor while this one could not renew it. */
export class HostLeaseLostError extends LifecycleError {
  readonly host: string;
  constructor(host: string, why: string) {
    super('HostLeaseHeld', `host ${host}: lost the event-log lease: ${why}`);
    this.name = 'HostLeaseLostError';
    this.host = host;
  }
}

/** Options of HostLease.acquire. */
export interface HostLeaseOptions {
  /** How long a lease lives without a heartbeat (the bucket's TTL; default 15 s). */
  ttlMs?: number;
  /** Replicas of the bucket when it is created (default 1; 3 on a cluster). */
  replicas?: number;
  /** Called when renewal finds the lease taken by someone else (after which isHeld is false). */
  onLost?: (e: HostLeaseLostError) => void;
}

const bootId = (() => {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
})();

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Open (creating when missing) the hosts bucket with a TTL. */
export async function hostsBucket(nc: NatsConnection, ttlMs = 15_000, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(HOSTS_BUCKET, { ttl: ttlMs, history: 1, replicas });
}

/** A held lease on one host's event log; heartbeats until released. */
export class HostLease {
  readonly host: string;
  readonly ttlMs: number;
  private readonly kv: KV;
  private readonly me: LeaseHolder;
  private revision: number;
  private timer?: NodeJS.Timeout;
  private held = true;
  private readonly onLost: (e: HostLeaseLostError) => void;

  private constructor(host: string, kv: KV, me: LeaseHolder, revision: number, ttlMs: number, onLost?: (e: HostLeaseLostError) => void) {
    this.host = host;
    this.kv = kv;
    this.me = me;
    this.revision = revision;
    this.ttlMs = ttlMs;
    this.onLost = onLost ?? (() => {});
  }

  /**
   * Take the host's lease: create the key, or take over one whose holder is provably gone (same machine and
   * boot, dead pid) or silent for longer than the TTL. Throws HostLeaseHeldError when a live holder has it.
   */
  static async acquire(nc: NatsConnection, host: string, opts: HostLeaseOptions = {}): Promise<HostLease> {
    checkHostId(host);
    const ttlMs = opts.ttlMs ?? 15_000;
    const kv = await hostsBucket(nc, ttlMs, opts.replicas);
    const now = new Date().toISOString();
    const me: LeaseHolder = { holder: randomUUID(), pid: process.pid, machine: os.hostname(), bootId, since: now, heartbeat: now };
    const revision = await HostLease.take(kv, host, me, ttlMs);
    const lease = new HostLease(host, kv, me, revision, ttlMs, opts.onLost);
    lease.timer = setInterval(() => void lease.renew().catch(() => {}), Math.max(50, Math.floor(ttlMs / 3)));
    lease.timer.unref();
    return lease;
  }

  private static async take(kv: KV, host: string, me: LeaseHolder, ttlMs: number): Promise<number> {
    const body = () => JSON.stringify(me);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await kv.get(host);
      if (!cur || cur.operation !== 'PUT' || cur.length === 0) {
        try {
          return await kv.create(host, body());
        } catch {
          continue; // someone created it between get and create: look again
        }
      }
      const other = cur.json<LeaseHolder>();
      const silentFor = Date.now() - cur.created.getTime();
      const stale = (other.bootId === bootId && other.machine === me.machine && !pidAlive(other.pid)) || silentFor > ttlMs;
      if (!stale) throw new HostLeaseHeldError(host, other);
      try {
        return await kv.update(host, body(), cur.revision);
      } catch {
        continue;
      }
    }
    throw new HostLeaseHeldError(host, (await kv.get(host))?.json<LeaseHolder>() ?? me);
  }

  /** Whether this object still holds the lease (as far as its last renewal knows). */
  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Heartbeat: compare-and-set on our revision. If the key expired while the server was away, take it
   * again; if another holder has it, the lease is lost (onLost) and stays lost.
   */
  async renew(): Promise<void> {
    if (!this.held) throw new HostLeaseLostError(this.host, 'already lost');
    this.me.heartbeat = new Date().toISOString();
    try {
      this.revision = await this.kv.update(this.host, JSON.stringify(this.me), this.revision);
      return;
    } catch {
      const cur = await this.kv.get(this.host); // throws while NATS is away: the caller retries later
      if (cur && cur.operation === 'PUT' && cur.length > 0 && cur.json<LeaseHolder>().holder !== this.me.holder) {
        this.lose(`now held by pid ${cur.json<LeaseHolder>().pid} on ${cur.json<LeaseHolder>().machine}`);
        throw new HostLeaseLostError(this.host, 'taken by another supervisor');
      }
      if (cur && cur.operation === 'PUT' && cur.json<LeaseHolder>().holder === this.me.holder) {
        this.revision = cur.revision; // our own write whose reply was lost
        return;
      }
      try {
        this.revision = await this.kv.create(this.host, JSON.stringify(this.me)); // expired while away: nobody took it
      } catch {
        this.lose('taken by another supervisor while this one was away');
        throw new HostLeaseLostError(this.host, 'taken by another supervisor');
      }
    }
  }

  private lose(why: string): void {
    if (!this.held) return;
    this.held = false;
    clearInterval(this.timer);
    this.onLost(new HostLeaseLostError(this.host, why));
  }

  /** Stop heartbeating and delete the key (if it is still ours), so the next supervisor need not wait. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (!this.held) return;
    this.held = false;
    await this.kv.delete(this.host, { previousSeq: this.revision }).catch(() => {});
  }
}
