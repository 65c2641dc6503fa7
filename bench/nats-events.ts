/**
 * NATS event benchmarks with a nats-server on loopback (JetStream, file storage):
 *   (a) latency from the append of an event to a remote subscriber (another NATS connection on
 *       `cordon.<host>.events.>`), one event at a time: through the daemon's outbox (journal append with
 *       fsync → JetStreamOutbox → stream) and through JetStreamStore (publish + ack);
 *   (b) publish throughput: a burst of journal appends forwarded by the outbox, and sequential
 *       JetStreamStore appends;
 *   (c) real containers: a Supervisor with `nats` runs C containers (create/start/exit/destroy) and the time
 *       from each transition's append in the supervisor to its arrival at the remote subscriber.
 * Writes the "## NATS events" section of bench/RESULTS.md (other sections are kept).
 *
 * Usage: unset NODE_EXTRA_CA_CERTS; node dist/bench/nats-events.js [--events N] [--burst B] [--containers C] [--nats URL]
 *                                       [--rootfs DIR] [--skip-containers] [--no-write]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Supervisor } from '../actors/supervisor.js';
import { defaultSpecJson } from '../cli/spec.js';
import { JetStreamOutbox } from '../events/jetstream-outbox.js';
import { JetStreamStore } from '../events/jetstream-store.js';
import { JournalStore } from '../events/journal.js';
import { connectNats } from '../events/nats-connection.js';
import { type CordonEvent, newEvent } from '../events/schema.js';
import { ARGS, REPO as repo, arg, flag, fmt, percentile as pct } from './bench-options.js';
import { openJournal } from '../actors/event-recorder.js';


interface Lat {
  n: number;
  p50: number;
  p99: number;
  max: number;
}
const lat = (xs: number[]): Lat => ({ n: xs.length, p50: pct(xs, 0.5), p99: pct(xs, 0.99), max: Math.max(...xs) });

/** A nats-server with JetStream on a free loopback port. */
async function startServer(dir: string): Promise<{ url: string; proc: ChildProcess; version: string }> {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const bin = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
  const version = spawnText(bin, ['--version']);
  const proc = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return { url: `nats://127.0.0.1:${port}`, proc, version };
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('nats-server did not start');
}

function spawnText(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** A remote subscriber: resolves `wait(id)` when the event with that id arrives. */
function remote(nc: NatsConnection, host: string) {
  const arrived = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  let count = 0;
  let onCount: (() => void) | undefined;
  let target = Infinity;
  nc.subscribe(`cordon.${host}.events.>`, {
    callback: (_e, m) => {
      const t = performance.now();
      const id = (m.json() as CordonEvent).id;
      arrived.set(id, t);
      waiting.get(id)?.(t);
      if (++count >= target) onCount?.();
    },
  });
  return {
    wait: (id: string) => new Promise<number>((resolve) => (arrived.has(id) ? resolve(arrived.get(id) as number) : waiting.set(id, resolve))),
    arrived,
    untilCount: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : ((target = n), (onCount = resolve)))),
  };
}

async function outboxLatency(url: string, dir: string, n: number, nc: NatsConnection): Promise<{ e2e: Lat; append: Lat }> {
  const host = `bench-ob-${process.pid}`;
  const journal = openJournal(path.join(dir, 'lat.journal'));
  const ob = await JetStreamOutbox.start({ journal, host, nats: { servers: url } });
  const r = remote(nc, host);
  await nc.flush();
  const e2e: number[] = [];
  const app: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const [e] = await journal.append([newEvent(host, `c${i % 10}`, 'update', { i })]);
    const t1 = performance.now();
    const t2 = await r.wait(e.id);
    app.push(t1 - t0);
    e2e.push(t2 - t0);
  }
  await ob.stop();
  await journal.close();
  return { e2e: lat(e2e), append: lat(app) };
}

async function storeLatency(url: string, n: number, nc: NatsConnection): Promise<Lat> {
  const host = `bench-js-${process.pid}`;
  const store = await JetStreamStore.open({ host, nats: { servers: url } });
  const r = remote(nc, host);
  await nc.flush();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const [e] = await store.append([newEvent(host, `c${i % 10}`, 'update', { i })]);
    xs.push((await r.wait(e.id)) - t0);
  }
  await store.close();
  return lat(xs);
}

async function outboxThroughput(url: string, dir: string, n: number, nc: NatsConnection): Promise<{ n: number; appendMs: number; publishMs: number; perSec: number }> {
  const host = `bench-obt-${process.pid}`;
  const journal = openJournal(path.join(dir, 'burst.journal'));
  const ob = await JetStreamOutbox.start({ journal, host, nats: { servers: url } });
  const r = remote(nc, host);
  await nc.flush();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) await journal.append(Array.from({ length: Math.min(100, n - i) }, (_, k) => newEvent(host, `c${i / 100}`, 'update', { i: i + k })));
  const t1 = performance.now();
  await r.untilCount(n);
  await ob.waitPublished(n);
  const t2 = performance.now();
  await ob.stop();
  await journal.close();
  return { n, appendMs: t1 - t0, publishMs: t2 - t0, perSec: n / ((t2 - t0) / 1000) };
}

async function storeThroughput(url: string, n: number): Promise<{ n: number; ms: number; perSec: number }> {
  const host = `bench-jst-${process.pid}`;
  const store = await JetStreamStore.open({ host, nats: { servers: url } });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await store.append([newEvent(host, `c${i % 10}`, 'update', { i })]);
  const ms = performance.now() - t0;
  await store.close();
  return { n, ms, perSec: n / (ms / 1000) };
}

async function containerLatency(url: string, dir: string, count: number, rootfs: string, nc: NatsConnection): Promise<{ lat: Lat; events: number; ms: number }> {
  const host = `bench-sup-${process.pid}`;
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(bundle);
  const spec = JSON.parse(defaultSpecJson()) as { process: { args: string[]; terminal: boolean }; root: { path: string } };
  spec.process.args = ['true'];
  spec.process.terminal = false;
  spec.root.path = rootfs;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  const nul = fs.openSync('/dev/null', 'r+');
  const sup = await Supervisor.start({ root: path.join(dir, 'root'), host, nats: { servers: url } });
  const r = remote(nc, host);
  await nc.flush();
  const appended = new Map<string, number>();
  const off = sup.store.subscribe((e) => appended.set(e.id, performance.now()));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const id = `b${i}`;
    await sup.create(id, { bundle, stdio: [nul, nul, nul] });
    await sup.start(id);
    await sup.waitFor(id, ['stopped'], 20_000);
    await sup.destroy(id);
  }
  const n = sup.store.lastSeq();
  await r.untilCount(n);
  const ms = performance.now() - t0;
  off();
  const xs = [...appended].map(([id, t]) => (r.arrived.get(id) as number) - t);
  await sup.stop();
  fs.closeSync(nul);
  return { lat: lat(xs), events: n, ms };
}

function section(cmd: string, version: string, o: Awaited<ReturnType<typeof outboxLatency>>, s: Lat, ot: Awaited<ReturnType<typeof outboxThroughput>>, st: Awaited<ReturnType<typeof storeThroughput>>, c?: Awaited<ReturnType<typeof containerLatency>>): string {
  const ms = (x: number) => `${fmt(x, 3)} ms`;
  const L = ['## NATS events', '', `Command: \`unset NODE_EXTRA_CA_CERTS; ${cmd}\` (after \`npx tsc -p tsconfig.json\`)`, ''];
  L.push(`${version} on 127.0.0.1 (JetStream file storage under ${os.tmpdir()}, stream CORDON_EVENTS R1), the subscriber on its own NATS connection in the same process (core subscription on \`cordon.<host>.events.>\`); ${os.cpus().length} CPUs shared with other work; Node ${process.version}.`, '');
  L.push('### (a) Latency: event append → remote subscriber, one event at a time', '');
  L.push('| path | events | p50 | p99 | max |', '|---|---:|---:|---:|---:|');
  L.push(`| daemon outbox: journal append (flock + write + fsync) → JetStreamOutbox → stream → subscriber | ${fmt(o.e2e.n)} | ${ms(o.e2e.p50)} | ${ms(o.e2e.p99)} | ${ms(o.e2e.max)} |`);
  L.push(`| … of which the journal append | ${fmt(o.append.n)} | ${ms(o.append.p50)} | ${ms(o.append.p99)} | ${ms(o.append.max)} |`);
  L.push(`| JetStreamStore.append (publish, wait for the ack) → subscriber | ${fmt(s.n)} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} |`);
  if (c) L.push(`| real containers: transition appended in the Supervisor (nats option) → subscriber | ${fmt(c.lat.n)} | ${ms(c.lat.p50)} | ${ms(c.lat.p99)} | ${ms(c.lat.max)} |`);
  L.push('', '### (b) Publish throughput', '');
  L.push('| what | events | time | events/s |', '|---|---:|---:|---:|');
  L.push(`| outbox: burst of journal appends (batches of 100) until all are in the stream and at the subscriber (one publish in flight at a time, msgID = event id) | ${fmt(ot.n)} | ${fmt(ot.publishMs / 1000, 2)} s (appends alone ${fmt(ot.appendMs / 1000, 2)} s) | **${fmt(ot.perSec)}** |`);
  L.push(`| JetStreamStore: sequential appends (publish + ack each) | ${fmt(st.n)} | ${fmt(st.ms / 1000, 2)} s | **${fmt(st.perSec)}** |`);
  if (c) L.push('', `(c) ${fmt(c.events)} events from ${fmt(c.events / 4)} busybox containers running \`true\` (create, start, exit, destroy each) in ${fmt(c.ms / 1000, 1)} s; latency measured from the moment the supervisor's journal append resolved.`);
  L.push('', 'Publishes are deliberately one at a time (the next is sent after the previous ack): a pipelined publish that is lost across a reconnect could let a later event overtake it, and order per host is part of the contract.', '');
  return L.join('\n');
}

function writeSection(text: string): void {
  const file = path.join(repo, 'bench', 'RESULTS.md');
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : ['# Benchmark results', ''];
  const start = lines.findIndex((l) => l.trim() === '## NATS events');
  if (start >= 0) {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    lines.splice(start, end - start, ...text.split('\n'));
  } else lines.push('', ...text.split('\n'));
  fs.writeFileSync(file, lines.join('\n').replace(/\n{3,}/g, '\n\n'));
}

async function main(): Promise<void> {
  const n = Number(arg('events') ?? 2000);
  const burst = Number(arg('burst') ?? 20000);
  const containers = Number(arg('containers') ?? 50);
  const rootfsArg = path.resolve(arg('rootfs') ?? path.join(repo, '.cache/rootfs/busybox'));
  const rootfs = fs.existsSync(rootfsArg) ? fs.realpathSync(rootfsArg) : rootfsArg; // the runtime refuses a rootfs reached through a symlink
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-nats-'));
  const srv = arg('nats') ? undefined : await startServer(path.join(dir, 'js'));
  const url = arg('nats') ?? (srv as { url: string }).url;
  const nc = await connectNats({ servers: url, name: 'bench-subscriber' });
  try {
    const o = await outboxLatency(url, dir, n, nc);
    console.log('outbox latency', o);
    const s = await storeLatency(url, n, nc);
    console.log('store latency', s);
    const ot = await outboxThroughput(url, dir, burst, nc);
    console.log('outbox throughput', ot);
    const st = await storeThroughput(url, Math.min(burst, 10_000));
    console.log('store throughput', st);
    const c = flag('skip-containers') || !fs.existsSync(rootfs) ? undefined : await containerLatency(url, dir, containers, rootfs, nc);
    if (c) console.log('containers', c);
    const text = section(`node dist/bench/nats-events.js ${ARGS.join(' ')}`.trim(), srv?.version ?? url, o, s, ot, st, c);
    console.log(text);
    if (!flag('no-write')) writeSection(text);
  } finally {
    await nc.close();
    srv?.proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
