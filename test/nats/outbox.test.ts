/**
 * The daemon's outbox (journal → JetStream) against a real nats-server: events appended while the server is
 * unreachable at start or killed mid-stream all reach the stream exactly once and in order when it returns;
 * appends by another process's journal handle are forwarded too; a second holder of the host id is refused;
 * a journal that disagrees with the stream is refused; an empty journal is restored from the stream.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HostLease, HostLeaseHeldError } from '../../events/host-lease.js';
import { HostLogDivergedError, JetStreamOutbox } from '../../events/jetstream-outbox.js';
import { eventsJetStream, readHostEvents, lastHostEvent } from '../../events/jetstream-log.js';
import { JournalStore } from '../../events/journal.js';
import { connectNats } from '../../events/nats-connection.js';
import { type CordonEvent, newEvent } from '../../events/schema.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { openJournal } from '../../actors/event-recorder.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-outbox-'));
let srv: NatsServer;
const journals: JournalStore[] = [];
const outboxes: JetStreamOutbox[] = [];

beforeAll(async () => {
  srv = await NatsServer.start();
});
afterEach(async () => {
  for (const o of outboxes.splice(0)) await o.stop().catch(() => {});
  for (const j of journals.splice(0)) await j.close().catch(() => {});
});
afterAll(async () => {
  await srv?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const hostId = () => `h${randomUUID().slice(0, 8)}`;
let n = 0;
function journal(file = path.join(tmp, `r${++n}`, 'events.journal')): JournalStore {
  mkdirSync(path.dirname(file), { recursive: true });
  const j = openJournal(file);
  journals.push(j);
  return j;
}
async function outbox(j: JournalStore, host: string, servers = srv.url, errors: Error[] = []): Promise<JetStreamOutbox> {
  const o = await JetStreamOutbox.start({ journal: j, host, nats: { servers, timeoutMs: 500 }, maxBackoffMs: 250, publishTimeoutMs: 1000, onError: (e) => errors.push(e) });
  outboxes.push(o);
  return o;
}
async function append(j: JournalStore, host: string, count: number, cid = 'c1', pauseMs = 0): Promise<CordonEvent[]> {
  const out: CordonEvent[] = [];
  for (let i = 0; i < count; i++) {
    out.push(...(await j.append([newEvent(host, cid, 'update', { i })])));
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
  }
  return out;
}

/** Every event of the host in the stream: read until the last one (readHostEvents stops at untilSeq). */
async function allStreamed(url: string, host: string): Promise<CordonEvent[]> {
  const nc = await connectNats({ servers: url });
  try {
    const j = await eventsJetStream(nc);
    const info = await j.jsm.streams.info('CORDON_EVENTS', { subjects_filter: `cordon.${host}.events.>` });
    const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    const out: CordonEvent[] = [];
    if (total === 0) return out;
    await new Promise<void>((resolve, reject) => {
      readHostEvents(j.js, host, Number.MAX_SAFE_INTEGER, ({ event }) => {
        out.push(event);
        if (out.length === total) resolve();
      }).catch(reject);
    });
    return out;
  } finally {
    await nc.close();
  }
}

const same = (a: CordonEvent[], b: CordonEvent[]) => expect(a.map((e) => [e.seq, e.id])).toEqual(b.map((e) => [e.seq, e.id]));

describe('outbox', () => {
  it('NATS unreachable at start: the supervisor side keeps appending; everything is published in order once it comes up', async () => {
    const later = await NatsServer.start();
    await later.kill();
    try {
      const host = hostId();
      const j = journal();
      const errors: Error[] = [];
      const o = await outbox(j, host, later.url, errors);
      expect(o.report.connected).toBe(false);
      expect(errors[0].message).toMatch(/not reachable .*events stay in the journal/);
      const written = await append(j, host, 20);
      await new Promise((r) => setTimeout(r, 500));
      expect(o.publishedSeq).toBe(0);
      await later.restart();
      await o.waitPublished(20, 20_000);
      same(await allStreamed(later.url, host), written);
    } finally {
      await later.stop();
    }
  });

  it('server killed for 3 s while 300 events are appended: all in the stream exactly once and in order', async () => {
    const own = await NatsServer.start();
    try {
      const host = hostId();
      const j = journal();
      const o = await outbox(j, host, own.url);
      const writing = append(j, host, 300, 'c1', 15); // ~5 s of appends: the outage falls in the middle
      await o.waitPublished(50, 20_000);
      await own.kill();
      const atKill = j.lastSeq();
      await new Promise((r) => setTimeout(r, 3000));
      const atRestart = j.lastSeq();
      await own.restart();
      const written = await writing;
      await o.waitPublished(300, 30_000);
      expect(atRestart - atKill).toBeGreaterThan(100); // appended while the server was down
      expect(atRestart).toBeLessThan(300);
      const got = await allStreamed(own.url, host);
      expect(got).toHaveLength(300);
      same(got, written);
      expect(got.every((e, i) => e.seq === i + 1)).toBe(true);
    } finally {
      await own.stop();
    }
  });

  it('an outage longer than the lease TTL: the expired lease is taken again and publishing resumes', async () => {
    const own = await NatsServer.start();
    try {
      const host = hostId();
      const j = journal();
      const errors: Error[] = [];
      const o = await JetStreamOutbox.start({ journal: j, host, nats: { servers: own.url, timeoutMs: 500 }, leaseTtlMs: 1000, maxBackoffMs: 250, publishTimeoutMs: 1000, onError: (e) => errors.push(e) });
      outboxes.push(o);
      const first = await append(j, host, 10);
      await o.waitPublished(10);
      await own.kill();
      const second = await append(j, host, 10);
      await new Promise((r) => setTimeout(r, 3000));
      await own.restart();
      await o.waitPublished(20, 30_000);
      same(await allStreamed(own.url, host), [...first, ...second]);
      expect(o.failed).toBeUndefined();
      expect(errors.filter((e) => e.name === 'HostLeaseLostError')).toEqual([]);
      // The key names this process again, and a rival is still refused.
      const nc = await connectNats({ servers: own.url });
      try {
        await expect(HostLease.acquire(nc, host)).rejects.toBeInstanceOf(HostLeaseHeldError);
      } finally {
        await nc.close();
      }
    } finally {
      await own.stop();
    }
  });

  it("forwards another process's appends to the same journal file (CLI verbs next to the daemon)", async () => {
    const host = hostId();
    const j = journal();
    const o = await outbox(j, host);
    const cli = journal(j.path);
    const written = await append(cli, host, 5, 'from-cli');
    await o.waitPublished(5, 10_000);
    same(await allStreamed(srv.url, host), written);
  });

  it('a second outbox (or supervisor) with the same host id is refused with HostLeaseHeldError', async () => {
    const host = hostId();
    await outbox(journal(), host);
    await expect(outbox(journal(), host)).rejects.toBeInstanceOf(HostLeaseHeldError);
  });

  it('a journal that disagrees with the stream is refused (HostLogDivergedError), nothing published', async () => {
    const host = hostId();
    const a = journal();
    const oa = await outbox(a, host);
    await append(a, host, 3);
    await oa.waitPublished(3);
    await oa.stop();
    const b = journal();
    await append(b, host, 4); // another history for the same host id
    await expect(outbox(b, host)).rejects.toBeInstanceOf(HostLogDivergedError);
    expect((await allStreamed(srv.url, host)).map((e) => e.id)).toEqual((await a.read()).map((e) => e.id));
  });

  it('restore: an empty journal gets the host events from the stream, same seq and ids, then continues after them', async () => {
    const host = hostId();
    const a = journal();
    const oa = await outbox(a, host);
    const written = [...(await append(a, host, 4, 'x')), ...(await append(a, host, 3, 'y'))];
    await oa.waitPublished(7);
    await oa.stop();
    const fresh = journal();
    const ob = await outbox(fresh, host);
    expect(ob.report.imported).toBe(7);
    expect(await fresh.read()).toEqual(written);
    expect(fresh.containerSeq('x')).toBe(4);
    const [next] = await fresh.append([newEvent(host, 'y', 'update', {})]);
    expect([next.seq, next.containerSeq]).toEqual([8, 4]);
    await ob.waitPublished(8);
    same(await allStreamed(srv.url, host), [...written, next]);
  });

  it('a record quarantined before it was published: the rest goes out in order without it; a restore imports the gap as a marker', async () => {
    const host = hostId();
    const file = path.join(tmp, `r${++n}`, 'events.journal');
    const a = journal(file);
    const written = await append(a, host, 5, 'q');
    await a.close();
    const bytes = readFileSync(file);
    let at = 0;
    for (let k = 0; k < 2; k++) at = bytes.indexOf(0x0a, at) + 1; // the start of record 3
    bytes[at + 30] ^= 0x01;
    writeFileSync(file, bytes);
    const b = journal(file);
    expect(b.quarantines.map((q) => q.seqs)).toEqual([[3, 3]]);
    const ob = await outbox(b, host);
    const [sixth] = await append(b, host, 1, 'q');
    expect(sixth.seq).toBe(6);
    await ob.waitPublished(6);
    await ob.stop();
    const kept = [...written.filter((e) => e.seq !== 3), sixth];
    same(await allStreamed(srv.url, host), kept);

    const fresh = journal();
    const oc = await outbox(fresh, host);
    expect(oc.report.imported).toBe(5);
    expect(await fresh.read()).toEqual(kept);
    expect(readFileSync(fresh.path, 'utf8')).toContain('{"quarantined":[3,3],"reason":"missing from the imported history"}');
    const [next] = await fresh.append([newEvent(host, 'q', 'update', {})]);
    expect(next.seq).toBe(7);
    await oc.waitPublished(7);
  });
});
