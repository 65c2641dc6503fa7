/**
 * The outbox on a three-node nats-server cluster with a replicated (R3) events stream and lease bucket: the
 * stream's leader is SIGKILLed in the middle of 300 appends and every event is still in the stream exactly
 * once and in order, read back through a surviving node and, after it rejoins, through the restarted one.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JetStreamOutbox } from '../../events/jetstream-outbox.js';
import { EVENTS_STREAM, ensureEventsStream, eventsJetStream, readHostEvents } from '../../events/jetstream-log.js';
import { JournalStore } from '../../events/journal.js';
import { connectNats } from '../../events/nats-connection.js';
import { type CordonEvent, newEvent } from '../../events/schema.js';
import { NatsCluster } from '../fixtures/nats-server.js';
import { eventually } from '../fixtures/wait.js';
import { openJournal } from '../../actors/event-recorder.js';

let cluster: NatsCluster;
const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-cluster-'));
beforeAll(async () => {
  cluster = await NatsCluster.start(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** All of the host's events through the server at `url`: `count` of them, in stream order. */
async function streamedVia(url: string, host: string, count: number): Promise<CordonEvent[]> {
  const nc = await connectNats({ servers: url });
  try {
    const j = await eventually(() => eventsJetStream(nc));
    return await eventually(async () => {
      const out: CordonEvent[] = [];
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${out.length} of ${count} events via ${url}`)), 10_000);
        readHostEvents(j.js, host, count, ({ event }) => void out.push(event))
          .then(() => {
            clearTimeout(t);
            resolve();
          })
          .catch(reject);
      });
      // A few more would show up as duplicates: the stream must hold exactly `count` for this host.
      const info = await j.jsm.streams.info(EVENTS_STREAM, { subjects_filter: `cordon.${host}.events.>` });
      const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      if (total !== count) throw new Error(`stream holds ${total} events of ${host}, expected ${count}`);
      // A node that just rejoined may answer a read before it has caught up with the last write: read again.
      if (out.length !== count) throw new Error(`read ${out.length} of the ${count} events stored via ${url}`);
      return out;
    });
  } finally {
    await nc.close();
  }
}

it('R3 stream: the leader is killed mid-stream; all 300 events once and in order, on a survivor and on the rejoined node', async () => {
  const host = `h${randomUUID().slice(0, 8)}`;
  const nc = await connectNats({ servers: cluster.urls });
  const j = await eventually(() => eventsJetStream(nc));
  await eventually(() => ensureEventsStream(j.jsm, { replicas: 3 }));
  const info = await eventually(async () => {
    const i = await j.jsm.streams.info(EVENTS_STREAM);
    if (!i.cluster?.leader || (i.cluster.replicas ?? []).length !== 2) throw new Error('stream not yet replicated');
    return i;
  });
  expect(info.config.num_replicas).toBe(3);
  await nc.close();

  mkdirSync(path.join(tmp, 'r'), { recursive: true });
  const journal = openJournal(path.join(tmp, 'r', 'events.journal'));
  const ob = await eventually(() =>
    JetStreamOutbox.start({ journal, host, nats: { servers: cluster.urls, timeoutMs: 1000 }, replicas: 3, maxBackoffMs: 250, publishTimeoutMs: 1000 }),
  );
  try {
    expect(ob.report.connected).toBe(true);
    const written: CordonEvent[] = [];
    const writing = (async () => {
      for (let i = 0; i < 300; i++) {
        written.push(...(await journal.append([newEvent(host, `c${i % 7}`, 'update', { i })])));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await ob.waitPublished(100, 30_000);
    const leaderName = info.cluster!.leader!;
    const leader = cluster.nodes.find((n) => leaderName.endsWith(`-n${cluster.nodes.indexOf(n)}`))!;
    expect(leader).toBeDefined();
    await leader.kill();
    const publishedAtKill = ob.publishedSeq;
    await writing;
    await ob.waitPublished(300, 60_000);
    expect(publishedAtKill).toBeLessThan(300);

    const survivor = cluster.nodes.find((n) => n !== leader)!;
    const got = await streamedVia(survivor.url, host, 300);
    expect(got.map((e) => [e.seq, e.id])).toEqual(written.map((e) => [e.seq, e.id]));

    await leader.restart();
    const rejoined = await streamedVia(leader.url, host, 300);
    expect(rejoined.map((e) => e.id)).toEqual(written.map((e) => e.id));
  } finally {
    await ob.stop();
    await journal.close();
  }
}, 180_000);
