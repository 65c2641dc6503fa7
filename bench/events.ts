/**
 * Event-log benchmarks (ARCHITECTURE.md, "Events" and "Recovery"):
 *   (a) journal append throughput: N single-event appends (each one fsync'd), N events in batches of B
 *       (one fsync a batch), and N facts through EventRecorder.record (machine check + expected sequence);
 *   (b) replay of 100,000 events (20,000 containers × create/start/pause/resume/exit): JournalStore.open
 *       (read + CRC + validate), read(1), replayFacts, snapshotOf — must total under 2 s — and, for
 *       comparison, Supervisor.start on the same log (an actor per container);
 *   (c) supervisor memory per idle container: a Cordon in a child process creates and starts M containers
 *       (`sleep 100000`, busybox rootfs, runc's default config, default cgroupsPath), RSS/heap before and
 *       after, each init's VmRSS and memory cgroup usage, then destroys them all and checks nothing is left.
 * Writes the "## Event log" section of bench/RESULTS.md (other sections are kept).
 *
 * Usage: node dist/bench/events.js [--appends N] [--batch B] [--containers C] [--idle M] [--dir DIR]
 *                                  [--rootfs DIR] [--skip-memory] [--no-write]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Cordon } from '../actors/cordon.js';
import { EventRecorder } from '../actors/event-recorder.js';
import { Supervisor } from '../actors/supervisor.js';
import { defaultSpecJson } from '../cli/spec.js';
import { JournalStore, encodeRecord } from '../events/journal.js';
import { type CordonEvent, type EventAction, EVENT_SCHEMA_VERSION, newEvent } from '../events/schema.js';
import {replayFacts } from '../machines/replay.js';
import { snapshotOf } from '../machines/snapshot.js';
import { ARGS, REPO as repo, arg, flag, fmt, percentile } from './bench-options.js';
import { openJournal } from '../actors/event-recorder.js';

const ms = (a: number, b: number) => b - a;


// ---------------------------------------------------------------------------------------------------------
// (a) append throughput

/** Figures of the append benchmark. */
export interface AppendResult {
  single: { n: number; ms: number; perSec: number; p50: number; p99: number };
  batched: { n: number; batch: number; ms: number; perSec: number; batchesPerSec: number };
  recorder: { n: number; ms: number; perSec: number };
  fsync: { p50: number };
}

/** Append throughput: single fsync'd appends, batched appends, EventRecorder.record; journals under dir. */
export async function appendBench(dir: string, n: number, batch: number): Promise<AppendResult> {
  // The disk's own fsync latency, for reference.
  const probe = path.join(dir, 'fsync.probe');
  const pfd = fs.openSync(probe, 'w');
  const fsyncs: number[] = [];
  for (let i = 0; i < 200; i++) {
    fs.writeSync(pfd, Buffer.alloc(320, 0x61));
    const t = performance.now();
    fs.fsyncSync(pfd);
    fsyncs.push(performance.now() - t);
  }
  fs.closeSync(pfd);
  fs.rmSync(probe);

  const host = 'bench-host';
  const single = openJournal(path.join(dir, 'single.journal'));
  const lat: number[] = [];
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await single.append([newEvent(host, `web-${i % 1000}`, 'start', { pid: 100_000 + i }, { from: 'created', to: 'running' })]);
    lat.push(performance.now() - t);
  }
  const singleMs = performance.now() - t0;
  await single.close();

  const batched = openJournal(path.join(dir, 'batched.journal'));
  const actions: EventAction[] = ['create', 'start', 'pause', 'resume', 'exit'];
  t0 = performance.now();
  for (let b = 0; b < n / batch; b++) {
    const id = `web-${b}`;
    await batched.append(Array.from({ length: batch }, (_, k) => newEvent(host, id, actions[k % actions.length], { pid: 100_000 + b })));
  }
  const batchedMs = performance.now() - t0;
  if (batched.lastSeq() !== n) throw new Error(`batched: ${batched.lastSeq()} records, expected ${n}`);
  await batched.close();

  // Facts through the recorder: each checked against the container's machine, appended with its expected sequence.
  const rs = openJournal(path.join(dir, 'recorder.journal'));
  const rec = new EventRecorder(rs, host);
  const life: Array<[EventAction, Record<string, unknown>]> = [['create', { pid: 1, bundle: '/b' }], ['start', { pid: 1 }], ['exit', { pid: 1, exitCode: 0, signal: null, oomKilled: false }], ['destroy', { force: false }]];
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const [action, attrs] = life[i % life.length];
    await rec.record(`r-${Math.floor(i / life.length)}`, action, attrs);
  }
  const recMs = performance.now() - t0;
  rec.close();
  await rs.close();

  return {
    single: { n, ms: singleMs, perSec: (n / singleMs) * 1000, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) },
    batched: { n, batch, ms: batchedMs, perSec: (n / batchedMs) * 1000, batchesPerSec: (n / batch / batchedMs) * 1000 },
    recorder: { n, ms: recMs, perSec: (n / recMs) * 1000 },
    fsync: { p50: percentile(fsyncs, 0.5) },
  };
}

// ---------------------------------------------------------------------------------------------------------
// (b) replay

/** One replay's phases in milliseconds. */
export interface ReplayRun {
  openMs: number;
  readMs: number;
  replayMs: number;
  snapshotMs: number;
  totalMs: number;
}

/** The replay benchmark: the journal written and three replays of it, plus Supervisor.start on it. */
export interface ReplayResult {
  events: number;
  containers: number;
  bytes: number;
  writeMs: number;
  runs: ReplayRun[];
  supervisorStartMs: number;
  supervisorHeapMB: number;
}

/** Write a journal of `containers` × create/start/pause/resume/exit, 100 containers at a time interleaved. */
export function writeReplayJournal(file: string, containers: number): { events: number; bytes: number } {
  const host = 'node-a';
  const steps: Array<{ action: EventAction; from: string; to: string; attrs: (i: number) => Record<string, unknown> }> = [
    { action: 'create', from: 'creating', to: 'created', attrs: (i) => ({ pid: 200_000 + i, bundle: `/var/lib/cordon/bundles/web-${String(i).padStart(5, '0')}` }) },
    { action: 'start', from: 'created', to: 'running', attrs: (i) => ({ pid: 200_000 + i }) },
    { action: 'pause', from: 'running', to: 'paused', attrs: () => ({}) },
    { action: 'resume', from: 'paused', to: 'running', attrs: () => ({}) },
    { action: 'exit', from: 'running', to: 'stopped', attrs: (i) => ({ pid: 200_000 + i, exitCode: i % 7 === 0 ? 137 : 0, signal: i % 7 === 0 ? 9 : null, oomKilled: false }) },
  ];
  const fd = fs.openSync(file, 'w', 0o600);
  let seq = 0;
  let bytes = 0;
  let time = Date.now() - 3_600_000;
  const chunk = 100;
  for (let base = 0; base < containers; base += chunk) {
    const bufs: Buffer[] = [];
    for (let s = 0; s < steps.length; s++) {
      for (let i = base; i < Math.min(base + chunk, containers); i++) {
        time += 0.037;
        const ne = newEvent(host, `web-${String(i).padStart(5, '0')}`, steps[s].action, steps[s].attrs(i), { from: steps[s].from, to: steps[s].to });
        const e: CordonEvent = { ...ne, v: EVENT_SCHEMA_VERSION, seq: ++seq, containerSeq: s + 1 };
        const b = encodeRecord(e);
        bufs.push(b);
        bytes += b.length;
      }
    }
    fs.writeSync(fd, Buffer.concat(bufs));
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return { events: seq, bytes };
}

async function replayOnce(file: string, containers: number): Promise<ReplayRun> {
  const t0 = performance.now();
  const store = openJournal(file);
  const t1 = performance.now();
  const events = await store.read(1);
  const t2 = performance.now();
  const states = replayFacts(events);
  const t3 = performance.now();
  const snaps = [...states.values()].filter((s) => s.value !== 'destroyed').map(snapshotOf);
  const t4 = performance.now();
  await store.close();
  if (states.size !== containers || snaps.length !== containers) throw new Error(`replay: ${states.size} containers, ${snaps.length} snapshots`);
  const notStopped = [...states.values()].filter((s) => s.value !== 'stopped').length;
  if (notStopped) throw new Error(`replay: ${notStopped} containers not stopped`);
  return { openMs: ms(t0, t1), readMs: ms(t1, t2), replayMs: ms(t2, t3), snapshotMs: ms(t3, t4), totalMs: ms(t0, t4) };
}

/** Write a journal of containers × 5 events under dir and replay it three times (see ReplayResult). */
export async function replayBench(dir: string, containers: number): Promise<ReplayResult> {
  const root = path.join(dir, 'replay-root');
  fs.mkdirSync(root);
  const file = path.join(root, 'events.journal');
  const t0 = performance.now();
  const { events, bytes } = writeReplayJournal(file, containers);
  const writeMs = performance.now() - t0;
  const runs: ReplayRun[] = [];
  for (let i = 0; i < 3; i++) runs.push(await replayOnce(file, containers));
  // The real recovery path: the recorder folds the log, the supervisor builds an actor per container.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const t1 = performance.now();
  const sup = await Supervisor.start({ root });
  const supervisorStartMs = performance.now() - t1;
  gc();
  const supervisorHeapMB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  if (sup.ids().length !== containers) throw new Error(`Supervisor.start: ${sup.ids().length} containers`);
  await sup.stop();
  if (fs.statSync(file).size !== bytes) throw new Error('Supervisor.start changed the journal');
  return { events, containers, bytes, writeMs, runs, supervisorStartMs, supervisorHeapMB };
}

// ---------------------------------------------------------------------------------------------------------
// (c) memory per idle container (in a child process with --expose-gc, so (a) and (b) do not weigh on it)

/** One sample of this process's memory and open fds. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  fds: number;
}

/** Supervisor memory before and after starting idle containers, per container, and what was left. */
export interface MemoryResult {
  containers: number;
  baseline: MemorySample;
  after: MemorySample;
  perContainerRssKB: number;
  perContainerHeapKB: number;
  perContainerExternalKB: number;
  perContainerFds: number;
  createStartMs: { total: number; p50: number; p99: number };
  initVmRssKB: { avg: number; min: number; max: number };
  cgroupMemoryKB: { avg: number; min: number; max: number } | null;
  destroyMs: number;
  leftovers: string[];
}

function sample(): MemorySample {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, fds: fs.readdirSync('/proc/self/fd').length };
}

async function settle(gc: () => void): Promise<MemorySample> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 200));
  }
  return sample();
}

const vmRssKB = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

async function memoryChild(count: number, rootfs: string): Promise<void> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-mem-'));
  const root = path.join(work, 'root');
  const bundle = path.join(work, 'bundle');
  fs.mkdirSync(bundle);
  const spec = JSON.parse(defaultSpecJson()) as { process: { args: string[] }; root: { path: string } };
  spec.process.args = ['sleep', '100000'];
  spec.root.path = rootfs; // read-only, shared by all containers
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  const nul = fs.openSync('/dev/null', 'r+');
  const ids = Array.from({ length: count }, (_, i) => `idle-${process.pid}-${i}`);
  const cordon = await Cordon.open({ root });
  const cgroupDirs: string[] = [];
  const leftovers: string[] = [];
  let result: Omit<MemoryResult, 'destroyMs' | 'leftovers'> | undefined;
  const pids: number[] = [];
  try {
    // Warm the code paths once so the baseline includes loaded modules and JIT code, not just the open.
    const warm = await cordon.create(`warm-${process.pid}`, { bundle, stdio: [nul, nul, nul] });
    await warm.start();
    await warm.destroy({ force: true });
    const baseline = await settle(gc);
    const lat: number[] = [];
    const t0 = performance.now();
    for (const id of ids) {
      const t = performance.now();
      const c = await cordon.create(id, { bundle, stdio: [nul, nul, nul] });
      await c.start();
      lat.push(performance.now() - t);
      const st = await c.state();
      pids.push(st.oci.pid);
    }
    const total = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    const after = await settle(gc);
    const initRss = pids.map(vmRssKB);
    let cg: number[] | null = [];
    for (const id of ids) {
      const rec = JSON.parse(fs.readFileSync(path.join(root, id, 'state.json'), 'utf8')) as { cgroupPaths: Record<string, string>; cgroupCreated?: string[] };
      cgroupDirs.push(...(rec.cgroupCreated ?? Object.values(rec.cgroupPaths)));
      const mem = rec.cgroupPaths.memory ? path.join(rec.cgroupPaths.memory, 'memory.usage_in_bytes') : rec.cgroupPaths.unified ? path.join(rec.cgroupPaths.unified, 'memory.current') : '';
      try {
        cg?.push(Number(fs.readFileSync(mem, 'utf8')) / 1024);
      } catch {
        cg = null;
      }
    }
    const stats = (xs: number[]) => ({ avg: xs.reduce((a, b) => a + b, 0) / xs.length, min: Math.min(...xs), max: Math.max(...xs) });
    result = {
      containers: count,
      baseline,
      after,
      perContainerRssKB: (after.rss - baseline.rss) / count / 1024,
      perContainerHeapKB: (after.heapUsed - baseline.heapUsed) / count / 1024,
      perContainerExternalKB: (after.external - baseline.external) / count / 1024,
      perContainerFds: (after.fds - baseline.fds) / count,
      createStartMs: { total, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) },
      initVmRssKB: stats(initRss),
      cgroupMemoryKB: cg && cg.length ? stats(cg) : null,
    };
  } finally {
    const t1 = performance.now();
    for (const id of cordon.list()) {
      try {
        await cordon.load(id).destroy({ force: true });
      } catch (e) {
        leftovers.push(`destroy ${id}: ${(e as Error).message}`);
      }
    }
    const destroyMs = performance.now() - t1;
    await cordon.close();
    fs.closeSync(nul);
    await new Promise((r) => setTimeout(r, 200));
    for (const e of fs.readdirSync(root)) if (!e.startsWith('events.journal')) leftovers.push(`state dir ${e}`);
    for (const d of new Set(cgroupDirs)) if (fs.existsSync(d)) leftovers.push(`cgroup ${d}`);
    for (const p of pids) {
      try {
        const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
        if (!/\) [ZX] /.test(st)) leftovers.push(`process ${p}`);
      } catch {
        // gone
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
    if (result) process.stdout.write(JSON.stringify({ ...result, destroyMs, leftovers }) + '\n');
  }
}

/** Measure memory per idle container in a fresh child process (this module with --memory-child). */
export function runMemoryChild(count: number, rootfs: string): Promise<MemoryResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--memory-child', String(count), '--rootfs', rootfs], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) reject(new Error(`memory child exited ${code} without a result: ${out}`));
      else resolve(JSON.parse(line) as MemoryResult);
    });
  });
}

/** RSS of any running containerd shims (a runc container's per-container monitor in containerd deployments). */
export function shimRss(): { policy: string; shims: Array<{ pid: number; name: string; rssKB: number; pssKB: number }> } {
  let policy = '';
  try {
    policy = execFileSync('apt-cache', ['policy', 'containerd'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /Installed:|Candidate:/.test(l))
      .map((l) => l.trim())
      .join('; ');
  } catch {
    policy = 'apt-cache not available';
  }
  const shims: Array<{ pid: number; name: string; rssKB: number; pssKB: number }> = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const name = fs.readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if (!name.startsWith('containerd-shim')) continue;
      const exe = fs.readlinkSync(`/proc/${e}/exe`);
      const pss = Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${e}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
      shims.push({ pid: Number(e), name: path.basename(exe), rssKB: vmRssKB(Number(e)), pssKB: pss });
    } catch {
      // gone
    }
  }
  return { policy, shims };
}

// ---------------------------------------------------------------------------------------------------------
// report

function section(cmd: string, fsType: string, a: AppendResult, r: ReplayResult, m: MemoryResult | null, shim: ReturnType<typeof shimRss>): string {
  const L: string[] = [];
  const run1 = r.runs[0];
  const med = [...r.runs].sort((x, y) => x.totalMs - y.totalMs)[1] ?? run1;
  L.push('## Event log', '');
  L.push(`Measured ${new Date().toISOString()} on Linux ${os.release()}, ${os.cpus().length} CPUs (nproc ${os.availableParallelism()}), Node ${process.version}; journals on ${fsType}; load average at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other work may share the machine: compare within one run).`);
  L.push(`Command: \`${cmd}\``, '');
  L.push('### (a) Journal append throughput', '');
  L.push('| what | events | time | events/s | notes |', '|---|---:|---:|---:|---|');
  L.push(`| single-event appends (flock + write + fsync each) | ${fmt(a.single.n)} | ${fmt(a.single.ms / 1000, 2)} s | ${fmt(a.single.perSec)} | latency p50 ${fmt(a.single.p50, 3)} ms, p99 ${fmt(a.single.p99, 3)} ms; bare fsync p50 ${fmt(a.fsync.p50, 3)} ms |`);
  L.push(`| batched appends, ${a.batched.batch} events per batch (one fsync per batch) | ${fmt(a.batched.n)} | ${fmt(a.batched.ms / 1000, 2)} s | ${fmt(a.batched.perSec)} | ${fmt(a.batched.batchesPerSec)} batches/s |`);
  L.push(`| EventRecorder.record (machine check + expectedContainerSeq + fsync) | ${fmt(a.recorder.n)} | ${fmt(a.recorder.ms / 1000, 2)} s | ${fmt(a.recorder.perSec)} | create/start/exit/destroy × ${fmt(a.recorder.n / 4)} containers |`);
  L.push('');
  L.push('### (b) Replay of 100,000 events', '');
  L.push(`Journal: ${fmt(r.events)} events (${fmt(r.containers)} containers × create/start/pause/resume/exit, interleaved 100 containers at a time), ${fmt(r.bytes / 2 ** 20, 1)} MiB, written in ${fmt(r.writeMs)} ms; page cache warm.`, '');
  L.push('| run | JournalStore.open (read + CRC + validate) | read(1) (parse) | replayFacts | snapshotOf × 20,000 | total |', '|---|---:|---:|---:|---:|---:|');
  r.runs.forEach((x, i) => L.push(`| ${i + 1} | ${fmt(x.openMs)} ms | ${fmt(x.readMs)} ms | ${fmt(x.replayMs)} ms | ${fmt(x.snapshotMs)} ms | **${fmt(x.totalMs)} ms** |`));
  L.push('');
  L.push(`Target < 2,000 ms: first run ${fmt(run1.totalMs)} ms, median ${fmt(med.totalMs)} ms — ${run1.totalMs < 2000 && med.totalMs < 2000 ? 'met' : '**NOT met**'}. ` +
    `Split of the first run: open/parse ${fmt(run1.openMs + run1.readMs)} ms, replay ${fmt(run1.replayMs + run1.snapshotMs)} ms.`);
  L.push(`For comparison, Supervisor.start (what Cordon.open does: the recorder folds the log, then an xstate actor is started per container) on the same log: ${fmt(r.supervisorStartMs)} ms, +${fmt(r.supervisorHeapMB)} MB V8 heap (after GC) for 20,000 actors and their recorded states.`, '');
  L.push('### (c) Supervisor memory per idle container', '');
  if (!m) L.push('Not measured (--skip-memory).', '');
  else {
    const kb = (b: number) => fmt(b / 1024);
    L.push(`${fmt(m.containers)} containers running \`sleep 100000\` (busybox rootfs shared read-only, runc's default config from \`cordon spec\`, default cgroupsPath), created and started by one Cordon in one Node process (run with GC forced before each sample; baseline taken after Cordon.open and one warm-up container).`, '');
    L.push('| | baseline | after | per container |', '|---|---:|---:|---:|');
    L.push(`| process RSS | ${kb(m.baseline.rss)} KB | ${kb(m.after.rss)} KB | **${fmt(m.perContainerRssKB, 1)} KB** |`);
    L.push(`| V8 heap used | ${kb(m.baseline.heapUsed)} KB | ${kb(m.after.heapUsed)} KB | ${fmt(m.perContainerHeapKB, 1)} KB |`);
    L.push(`| external (buffers, native) | ${kb(m.baseline.external)} KB | ${kb(m.after.external)} KB | ${fmt(m.perContainerExternalKB, 1)} KB |`);
    L.push(`| open fds | ${m.baseline.fds} | ${m.after.fds} | ${fmt(m.perContainerFds, 1)} |`);
    L.push('');
    L.push(`Target < 200 KB per container: ${m.perContainerRssKB < 200 ? 'met' : '**NOT met**'}. Create + start: ${fmt(m.createStartMs.total / 1000, 1)} s for ${m.containers} (p50 ${fmt(m.createStartMs.p50)} ms, p99 ${fmt(m.createStartMs.p99)} ms each); destroy --force of all: ${fmt(m.destroyMs / 1000, 1)} s.`);
    L.push(`Per-container kernel side: each init's VmRSS avg ${fmt(m.initVmRssKB.avg)} KB (min ${m.initVmRssKB.min}, max ${m.initVmRssKB.max})` +
      (m.cgroupMemoryKB ? `; memory cgroup usage (page cache and kernel memory charged to it included) avg ${fmt(m.cgroupMemoryKB.avg)} KB (min ${fmt(m.cgroupMemoryKB.min)}, max ${fmt(m.cgroupMemoryKB.max)})` : '') + '.');
    L.push(`After destroying all: ${m.leftovers.length === 0 ? 'nothing left (no state dirs, no cgroup directories, no processes)' : `**left behind: ${m.leftovers.slice(0, 10).join('; ')}${m.leftovers.length > 10 ? ` … (${m.leftovers.length})` : ''}**`}.`, '');
  }
  L.push(`Comparison: in containerd deployments every runc container also has its own monitor process, containerd-shim-runc-v2 (runc itself exits after start). Debian 12: ${shim.policy}.`);
  if (shim.shims.length) L.push(`(Shims found running now, started outside this bench, e.g. \`ctr run -d --rootfs DIR ID /bin/sleep 100000\` against a containerd started by hand.) Running shims measured now: ${shim.shims.map((s) => `${s.name} pid ${s.pid} VmRSS ${fmt(s.rssKB)} KB (PSS ${fmt(s.pssKB)} KB)`).join('; ')} — per container, against cordon's per-container supervisor cost above (cordon has no per-container process).`);
  else L.push('No containerd shim was running when this was measured, so its RSS is not reported here.');
  L.push('');
  return L.join('\n');
}

/** Replace (or add) the "## Event log" section of bench/RESULTS.md, keeping every other section. */
function writeResults(text: string): string {
  const file = path.join(repo, 'bench', 'RESULTS.md');
  const cur = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n';
  const lines = cur.split('\n');
  const start = lines.findIndex((l) => l.trim() === '## Event log');
  let out: string;
  if (start < 0) out = `${cur.replace(/\n*$/, '\n\n')}${text}`;
  else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    out = [...lines.slice(0, start), ...text.replace(/\n$/, '').split('\n'), ...(end < lines.length ? ['', ...lines.slice(end)] : [''])].join('\n');
  }
  fs.writeFileSync(file, out);
  return file;
}

async function main(): Promise<void> {
  const rootfs = path.resolve(arg('rootfs') ?? path.join(repo, '.cache/rootfs/busybox'));
  if (flag('memory-child')) {
    await memoryChild(Number(arg('memory-child')), rootfs);
    return;
  }
  const n = Number(arg('appends') ?? 20_000);
  const batch = Number(arg('batch') ?? 100);
  const containers = Number(arg('containers') ?? 20_000);
  const idle = Number(arg('idle') ?? 500);
  const dir = fs.mkdtempSync(path.join(arg('dir') ?? os.tmpdir(), 'cordon-bench-events-'));
  const cmd = `node dist/bench/events.js ${ARGS.join(' ')}`.trim();
  try {
    console.log(`(a) appends: ${n} single, ${n} in batches of ${batch}, ${n} through EventRecorder …`);
    const a = await appendBench(dir, n, batch);
    console.log(`    single ${fmt(a.single.perSec)} events/s (p50 ${fmt(a.single.p50, 3)} ms), batched ${fmt(a.batched.perSec)} events/s, recorder ${fmt(a.recorder.perSec)} events/s`);
    console.log(`(b) replay of ${containers * 5} events …`);
    const r = await replayBench(dir, containers);
    for (const x of r.runs) console.log(`    open ${fmt(x.openMs)} ms, read ${fmt(x.readMs)} ms, replayFacts ${fmt(x.replayMs)} ms, snapshotOf ${fmt(x.snapshotMs)} ms, total ${fmt(x.totalMs)} ms`);
    console.log(`    Supervisor.start on the same log: ${fmt(r.supervisorStartMs)} ms`);
    let m: MemoryResult | null = null;
    if (!flag('skip-memory')) {
      console.log(`(c) memory: ${idle} idle containers in a child process …`);
      m = await runMemoryChild(idle, rootfs);
      console.log(`    RSS ${fmt(m.perContainerRssKB, 1)} KB/container, heap ${fmt(m.perContainerHeapKB, 1)} KB/container, fds ${fmt(m.perContainerFds, 1)}/container, init VmRSS avg ${fmt(m.initVmRssKB.avg)} KB, leftovers ${m.leftovers.length}`);
    }
    const shim = shimRss();
    let fsType = '?';
    try {
      fsType = `${execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).trim()} (${path.dirname(dir)})`;
    } catch {
      // unknown
    }
    const text = section(cmd, fsType, a, r, m, shim);
    if (!flag('no-write')) console.log(`wrote ${writeResults(text)}`);
    else console.log(text);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
