/**
 * CordonClient.events$ on a real JetStream: the stream CORDON_EVENTS (file storage, `cordon.*.events.>`) is
 * made here and fed CordonEvent JSON with msgID = event id, as the supervisor's publisher does. The observable
 * filters by host/container/action with one subject, starts at a stream sequence, and when nats-server is
 * SIGKILLed and restarted it resumes right after the last event it delivered: no gap, no duplicate.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CordonClient, EVENTS_STREAM, type PositionedEvent, eventSubject } from '../../client/cordon-client.js';
import { connectNats } from '../../events/nats-connection.js';
import { type CordonEvent, type EventAction, newEvent } from '../../events/schema.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { until } from '../fixtures/wait.js';

let srv: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let client: CordonClient;
const seqs = new Map<string, number>();

beforeAll(async () => {
  srv = await NatsServer.start();
  nc = await connectNats({ servers: srv.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: EVENTS_STREAM, subjects: ['cordon.*.events.>'], storage: 'file', duplicate_window: 120_000_000_000 });
  js = jetstream(nc);
  client = new CordonClient(nc);
});

afterAll(async () => {
  await nc?.close();
  await srv?.stop();
});

/** Publish one event of `host` as the supervisor's publisher would (msgID = event id). */
async function publish(host: string, containerId: string, action: EventAction): Promise<CordonEvent> {
  const seq = (seqs.get(host) ?? 0) + 1;
  seqs.set(host, seq);
  const e: CordonEvent = { ...newEvent(host, containerId, action), seq, containerSeq: seq };
  await js.publish(`cordon.${host}.events.${containerId}.${action}`, JSON.stringify(e), { msgID: e.id, timeout: 5000 });
  return e;
}

describe('events$', () => {
  it('one filter subject per filter; tokens that cannot be subject tokens are refused', () => {
    expect(eventSubject({})).toBe('cordon.*.events.*.*');
    expect(eventSubject({ host: 'a', containerId: 'web-1', action: 'exit' })).toBe('cordon.a.events.web-1.exit');
    expect(() => eventSubject({ containerId: 'a.b' })).toThrow(/containerId/);
  });

  it('from a stream sequence, filtered by host and container, payloads as CordonEvents; a duplicate msgID is stored once', async () => {
    const a1 = await publish('ev-a', 'c1', 'create');
    await publish('ev-b', 'c1', 'create');
    const a2 = await publish('ev-a', 'c2', 'create');
    const a3 = await publish('ev-a', 'c1', 'start');
    // A retried publish of the same event: JetStream's duplicate window drops it.
    await js.publish(`cordon.ev-a.events.c1.start`, JSON.stringify(a3), { msgID: a3.id, timeout: 5000 });
    const all = await firstValueFrom(client.positionedEvents$({ host: 'ev-a' }, { sinceSeq: 1 }).pipe(take(3), toArray()));
    expect(all.map((p) => p.event)).toEqual([a1, a2, a3]);
    expect(all.map((p) => p.streamSeq)).toEqual([1, 3, 4]);
    const c1 = await firstValueFrom(client.events$({ host: 'ev-a', containerId: 'c1' }, { sinceSeq: 1 }).pipe(take(2), toArray()));
    expect(c1.map((e) => e.action)).toEqual(['create', 'start']);
    const fromSeq3 = await firstValueFrom(client.events$({ host: 'ev-a' }, { sinceSeq: 3 }).pipe(take(2), toArray()));
    expect(fromSeq3).toEqual([a2, a3]);
  });

  it('without sinceSeq: only events stored after the subscription', async () => {
    const got: CordonEvent[] = [];
    const sub = client.events$({ host: 'ev-new' }).subscribe((e) => got.push(e));
    await publish('ev-new', 'x', 'create'); // may race the consumer's creation: the stream's last sequence is read first
    await new Promise((r) => setTimeout(r, 300));
    const e2 = await publish('ev-new', 'x', 'start');
    await until(() => (got.at(-1)?.id === e2.id ? true : undefined), 5000, 'the start event');
    sub.unsubscribe();
    expect(got.map((e) => e.action).filter((a) => a === 'start')).toEqual(['start']);
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
  });

  it('server SIGKILLed and restarted: resumes after the last delivered event, no gap, no duplicate', async () => {
    const got: PositionedEvent[] = [];
    const start = (await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM)).state.last_seq + 1;
    const sub = client.positionedEvents$({ host: 'ev-r' }, { sinceSeq: start }).subscribe((p) => got.push(p));
    const sent: CordonEvent[] = [];
    for (let i = 0; i < 5; i++) sent.push(await publish('ev-r', `c${i % 2}`, 'create'));
    await until(() => (got.length === 5 ? true : undefined), 5000, 'the first five events');
    await srv.kill();
    await new Promise((r) => setTimeout(r, 500));
    await srv.restart();
    const restarted = Date.now();
    // The publisher reconnects too; events published after the restart must arrive, and nothing twice.
    for (let i = 0; i < 5; i++) {
      for (;;) {
        try {
          sent.push(await publish('ev-r', `c${i % 2}`, 'start'));
          break;
        } catch {
          seqs.set('ev-r', (seqs.get('ev-r') ?? 1) - 1);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const published = Date.now();
    await until(() => (got.length >= 10 ? true : undefined), 20_000, `ten events (got ${got.length})`);
    console.log(`events$ resume: publishing worked again ${published - restarted} ms after the restart; all ten events delivered ${Date.now() - published} ms later`);
    await new Promise((r) => setTimeout(r, 500));
    sub.unsubscribe();
    expect(got.map((p) => p.event.id)).toEqual(sent.map((e) => e.id));
    expect(got.map((p) => p.event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const ss = got.map((p) => p.streamSeq);
    expect(ss).toEqual([...ss].sort((x, y) => x - y));
    expect(new Set(ss).size).toBe(10);
  });

  it('a missing stream is an error on the observable, not a hang', async () => {
    const jsm = await jetstreamManager(nc);
    const bare = await NatsServer.start();
    const nc2 = await connectNats({ servers: bare.url });
    try {
      const err = await new Promise<Error>((resolve) => new CordonClient(nc2).events$({}).subscribe({ error: resolve }));
      expect(err.message).toMatch(/CORDON_EVENTS does not exist/);
    } finally {
      await nc2.close();
      await bare.stop();
    }
    expect(await jsm.streams.info(EVENTS_STREAM)).toBeTruthy();
  });
});
