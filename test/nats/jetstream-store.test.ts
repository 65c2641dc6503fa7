/**
 * JetStreamStore against a real nats-server: the shared EventStore contract, the subject and payload other
 * services read, msgID deduplication of retried publishes, and the single-writer lease per host id.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { HostIdError, HostLease, HostLeaseHeldError, HostLeaseLostError, hostsBucket } from '../../events/host-lease.js';
import { EVENTS_STREAM, eventsJetStream, publishEvent } from '../../events/jetstream-log.js';
import { JetStreamStore } from '../../events/jetstream-store.js';
import { connectNats } from '../../events/nats-connection.js';
import { newEvent } from '../../events/schema.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { storeContract } from '../events/store-contract.js';
import { eventually } from '../fixtures/wait.js';

let srv: NatsServer;
beforeAll(async () => {
  srv = await NatsServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

const hostId = () => `h${randomUUID().slice(0, 8)}`;

storeContract('JetStream', {
  async fresh() {
    const host = hostId();
    const store = await JetStreamStore.open({ host, nats: { servers: srv.url } });
    return {
      store,
      reopen: async () => {
        await store.close();
        return JetStreamStore.open({ host, nats: { servers: srv.url } });
      },
    };
  },
});

describe('JetStreamStore on the wire', () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connectNats({ servers: srv.url });
  });
  afterAll(async () => {
    await nc?.close();
  });

  it('publishes cordon.<host>.events.<id>.<action> with the event JSON as payload and its id as Nats-Msg-Id', async () => {
    const host = hostId();
    const s = await JetStreamStore.open({ host, connection: nc });
    const got: Array<{ subject: string; json: unknown; msgId?: string }> = [];
    const sub = nc.subscribe(`cordon.${host}.events.>`, {
      callback: (_err, m) => got.push({ subject: m.subject, json: m.json(), msgId: m.headers?.get('Nats-Msg-Id') }),
    });
    await nc.flush();
    const stored = await s.append([newEvent(host, 'web-1', 'create', { pid: 7 }), newEvent(host, 'web-1', 'start', { pid: 7 }, { from: 'created', to: 'running' })]);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    sub.unsubscribe();
    expect(got).toEqual([
      { subject: `cordon.${host}.events.web-1.create`, json: stored[0], msgId: stored[0].id },
      { subject: `cordon.${host}.events.web-1.start`, json: stored[1], msgId: stored[1].id },
    ]);
    const info = await (await eventsJetStream(nc)).jsm.streams.info(EVENTS_STREAM);
    expect(info.config.subjects).toEqual(['cordon.*.events.>']);
    expect(info.config.storage).toBe('file');
    await s.close();
  });

  it('a retried publish (same msgID) is stored once', async () => {
    const host = hostId();
    const s = await JetStreamStore.open({ host, connection: nc });
    const [e] = await s.append([newEvent(host, 'a', 'create')]);
    const { js } = await eventsJetStream(nc);
    const again = await publishEvent(js, host, e);
    expect(again.duplicate).toBe(true);
    await s.close();
    const reopened = await JetStreamStore.open({ host, connection: nc });
    expect((await reopened.read()).map((x) => x.id)).toEqual([e.id]);
    await reopened.close();
  });

  it('a second store with the same host id is refused with HostLeaseHeldError; after close it may open', async () => {
    const host = hostId();
    const first = await JetStreamStore.open({ host, nats: { servers: srv.url } });
    const err = await JetStreamStore.open({ host, nats: { servers: srv.url } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostLeaseHeldError);
    expect((err as HostLeaseHeldError).message).toMatch(new RegExp(`host ${host}: its event log is held by another supervisor \\(pid ${process.pid} on `));
    await first.append([newEvent(host, 'a', 'create')]);
    await first.close();
    const second = await JetStreamStore.open({ host, nats: { servers: srv.url } });
    expect(second.lastSeq()).toBe(1);
    await second.close();
  });

  it('a lease whose holder stops heartbeating expires after its TTL and can be taken; the old holder then knows it lost it', async () => {
    const host = hostId();
    const lost: HostLeaseLostError[] = [];
    const old = await HostLease.acquire(nc, host, { ttlMs: 1500, onLost: (e) => lost.push(e) });
    // Simulate a hung holder: stop its heartbeat without releasing.
    clearInterval((old as unknown as { timer: NodeJS.Timeout }).timer);
    await expect(HostLease.acquire(nc, host, { ttlMs: 1500 })).rejects.toBeInstanceOf(HostLeaseHeldError);
    await new Promise((r) => setTimeout(r, 2600));
    const next = await HostLease.acquire(nc, host, { ttlMs: 1500 });
    expect(next.isHeld).toBe(true);
    await expect(old.renew()).rejects.toBeInstanceOf(HostLeaseLostError);
    expect(old.isHeld).toBe(false);
    expect(lost).toHaveLength(1);
    await next.release();
    await old.release();
  });

  it('refuses a host id that is not one subject token', async () => {
    await expect(JetStreamStore.open({ host: 'node.example.com', connection: nc })).rejects.toBeInstanceOf(HostIdError);
    await expect(JetStreamStore.open({ host: 'a*', connection: nc })).rejects.toThrow(/host id "a\*": must be letters/);
  });
});

describe('lease takeover', () => {
  it('a lease left by a dead process on this machine is taken at once (no TTL wait)', async () => {
    const nc = await connectNats({ servers: srv.url });
    try {
      const host = hostId();
      const { spawnSync } = await import('node:child_process');
      const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim();
      const first = await HostLease.acquire(nc, host);
      const holder = JSON.parse(JSON.stringify((first as unknown as { me: object }).me)) as Record<string, unknown>;
      clearInterval((first as unknown as { timer: NodeJS.Timeout }).timer);
      // Rewrite the key as if a crashed daemon (that pid, now gone) had held it a moment ago.
      const kv = await hostsBucket(nc);
      const rev = (await kv.get(host))!.revision;
      await kv.update(host, JSON.stringify({ ...holder, pid: Number(dead) }), rev);
      const t0 = Date.now();
      const next = await HostLease.acquire(nc, host);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect((await kv.get(host))!.json<{ pid: number }>().pid).toBe(process.pid);
      await next.release();
      expect(await kv.get(host).then((e) => e?.operation)).not.toBe('PUT');
    } finally {
      await nc.close();
    }
  });
});

describe('JetStreamStore while NATS is away', () => {
  it('append rejects while the server is down; after it returns the next append continues the log without gaps or duplicates', async () => {
    const own = await NatsServer.start();
    try {
      const host = hostId();
      const s = await JetStreamStore.open({ host, nats: { servers: own.url }, publishAttempts: 2, publishTimeoutMs: 300 });
      const heard: number[] = [];
      s.subscribe((e) => heard.push(e.seq));
      await s.append([newEvent(host, 'a', 'create')]);
      await own.kill();
      await expect(s.append([newEvent(host, 'a', 'start')])).rejects.toThrow(/publish of event 2 \(a start\) to JetStream failed/);
      await own.restart();
      const [next] = await eventually(() => s.append([newEvent(host, 'a', 'kill')]));
      // The failed publish may or may not have reached the stream on reconnect: either way the log stays gap-free.
      expect([3, 2]).toContain(next.seq);
      const all = await s.read();
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: next.seq }, (_, i) => i + 1));
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
      expect(heard).toEqual(all.map((e) => e.seq));
      await s.close();
    } finally {
      await own.stop();
    }
  }, 60_000);
});

