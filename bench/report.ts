/**
 * The harness's results: their shape (also written as JSON for the quick test), the targets of issue 8
 * checked against them, and their markdown for bench/RESULTS.md (one section replaced, the rest kept).
 */
import fs from 'node:fs';
import type { AppendResult, MemoryResult, ReplayResult } from './events.js';
import { type Summary, fmtMs, fmtRatio } from './interleave.js';
import type { IdleDaemon } from './memory-cases.js';
import type { OpRows } from './ops-cases.js';
import type { Row, ThroughputRow } from './start-cases.js';

/** Everything one harness run measured. */
export interface HarnessResult {
  meta: { date: string; machine: string; versions: string[]; command: string; quick: boolean; sizes: Record<string, number>; workDir: string };
  startLatency?: Row[];
  cycle?: Row[];
  throughput?: ThroughputRow[];
  ops?: OpRows[];
  breakdown?: { phases: Array<[string, Summary]>; total: Summary; n: number };
  memory?: { idle: IdleDaemon; perContainer: MemoryResult; shimNote: string };
  events?: { append: AppendResult; replay: ReplayResult };
  nats?: { markdown: string; p99Ms?: number; skipped?: string };
  targets: Target[];
  /** What cleanup could not remove (must be empty). */
  leftovers: string[];
}

/** One of the issue's targets: what was asked, what was measured, whether it was met (null: not measured). */
export interface Target {
  what: string;
  measured: string;
  met: boolean | null;
}

const med = (rows: Row[] | undefined, name: string) => rows?.find((r) => r.name === name)?.s.median;

/** crun's run median net of its nsenter wrapper (what crun itself costs). */
export function crunNet(rows: Row[] | undefined): number | undefined {
  const crun = med(rows, '`crun run`');
  const ns = med(rows, 'nsenter wrapper of crun (`nsenter … /bin/true`)');
  return crun === undefined ? undefined : crun - (ns ?? 0);
}

/** Check issue 8's targets on a result. */
export function checkTargets(r: HarnessResult): Target[] {
  const t: Target[] = [];
  const warm = med(r.startLatency, 'cordon library (warm): create → exit reaped');
  const runc = med(r.startLatency, '`runc run`');
  const crun = crunNet(r.startLatency);
  const cli = med(r.startLatency, '`cordon run` (CLI)');
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? a / b : undefined);
  const judge = (what: string, x: number | undefined, limit: number, show: (x: number) => string, below = true) =>
    t.push({ what, measured: x === undefined ? 'not measured' : show(x), met: x === undefined ? null : below ? x <= limit : x >= limit });
  judge('warm start ≤ 0.5× `crun run` (median, crun net of nsenter)', ratio(warm, crun), 0.5, (x) => `${x.toFixed(2)}× (${fmtMs(warm ?? NaN)} vs ${fmtMs(crun ?? NaN)} ms)`);
  judge('warm start ≤ 0.25× `runc run` (median)', ratio(warm, runc), 0.25, (x) => `${x.toFixed(2)}× (${fmtMs(warm ?? NaN)} vs ${fmtMs(runc ?? NaN)} ms)`);
  judge('`cordon run` ≤ 1.5× `runc run` (median)', ratio(cli, runc), 1.5, (x) => `${x.toFixed(2)}× (${fmtMs(cli ?? NaN)} vs ${fmtMs(runc ?? NaN)} ms)`);
  const tp = (n: string) => r.throughput?.find((x) => x.name === n)?.t.perSecond;
  judge('throughput ≥ 3× runc’s (library vs `runc run`, same concurrency)', ratio(tp('cordon library (warm)'), tp('`runc run`')), 3, (x) => `${x.toFixed(2)}× (${tp('cordon library (warm)')?.toFixed(1)} vs ${tp('`runc run`')?.toFixed(1)} containers/s)`, false);
  judge('supervisor idle RSS < 60 MB (`cordon daemon`, nothing supervised)', r.memory ? r.memory.idle.rssKB / 1024 : undefined, 60, (x) => `${x.toFixed(1)} MB after ${((r.memory?.idle.settledMs ?? 0) / 1000).toFixed(1)} s idle (${((r.memory?.idle.earlyRssKB ?? 0) / 1024).toFixed(1)} MB at 2 s)`);
  const per = r.memory?.perContainer;
  judge('< 200 KB RSS per sleeping container', per && per.containers >= 100 ? per.perContainerRssKB : undefined, 200, (x) => `${x.toFixed(1)} KB (${per?.containers} containers)`);
  if (per && per.containers < 100) t[t.length - 1].measured = `not measured at size (quick: ${per.containers} containers, ${per.perContainerRssKB.toFixed(0)} KB each, dominated by noise)`;
  judge('event latency p99 < 5 ms (NATS, bench/nats-events.ts)', r.nats?.p99Ms, 5, (x) => `${x.toFixed(2)} ms`);
  const replay = r.events?.replay;
  const full = replay && replay.events >= 100_000;
  judge('replay of 100,000 events < 2 s (first run)', full ? replay.runs[0].totalMs / 1000 : undefined, 2, (x) => `${x.toFixed(2)} s`);
  if (replay && !full) t[t.length - 1].measured = `not measured at size (quick: ${replay.events} events in ${fmtMs(replay.runs[0].totalMs)} ms)`;
  return t;
}

function rowsTable(rows: Row[], bases: Record<string, number | undefined>): string[] {
  const names = Object.keys(bases);
  const L = [`| | min ms | median ms | p90 ms | n | ${names.map((n) => `/ ${n}`).join(' | ')} |`, `|---|---:|---:|---:|---:|${names.map(() => '---:').join('|')}|`];
  for (const r of rows) L.push(`| ${r.name} | ${fmtMs(r.s.min)} | ${fmtMs(r.s.median)} | ${fmtMs(r.s.p90)} | ${r.s.n} | ${names.map((n) => fmtRatio(r.s.median, bases[n])).join(' | ')} |`);
  for (const r of rows) if (r.note) L.push('', `${r.name}: ${r.note}.`);
  return L;
}

const kb = (b: number) => Math.round(b / 1024).toLocaleString('en-US');

/** The markdown section of a result. */
export function toMarkdown(r: HarnessResult): string {
  const L: string[] = [];
  L.push(`## Harness — \`${r.meta.command}\``, '');
  L.push(`Measured ${r.meta.date}${r.meta.quick ? ' (**quick smoke run: small samples, not for comparison**)' : ''}.`, '');
  L.push(`- Machine: ${r.meta.machine}`);
  for (const v of r.meta.versions) L.push(`- ${v}`);
  L.push(`- Sizes: ${Object.entries(r.meta.sizes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  L.push('- Every case runs its contenders interleaved in one process (A B, then B A, …) on the same busybox bundle with runc\'s default config (`runc spec`, terminal off); warm-up rounds dropped; NODE_EXTRA_CA_CERTS unset for every process. crun runs inside one private mount namespace without /sys/fs/cgroup/unified (crun refuses hybrid cgroups), entered with nsenter: its wrapper is measured on its own row and subtracted where crun is the base of a target.', '');
  L.push('### Targets', '', '| target | measured | met |', '|---|---|---|');
  for (const t of r.targets) L.push(`| ${t.what} | ${t.measured} | ${t.met === null ? '—' : t.met ? 'yes' : '**no**'} |`);
  L.push('');
  const runc = med(r.startLatency, '`runc run`');
  const crun = crunNet(r.startLatency);
  if (r.startLatency) {
    L.push('### Start latency (/bin/true, request → exit reaped)', '');
    L.push(...rowsTable(r.startLatency, { runc, 'crun (net)': crun }), '');
    L.push('The library row is `Cordon.create` + `Container.run` (start, wait for the exit to be reaped and recorded) in a warm process; every CLI row is a fresh process from spawn to exit (create, start, wait, delete).', '');
  }
  if (r.cycle) {
    const base = (n: string) => r.cycle?.find((x) => x.name.startsWith(n))?.s.median;
    L.push('### create + start + delete through the CLI', '');
    L.push(...rowsTable(r.cycle, { runc: base('runc'), crun: base('crun') }), '');
  }
  if (r.throughput) {
    const b = r.throughput.find((x) => x.name === '`runc run`')?.t.perSecond;
    const c = r.throughput.find((x) => x.name === '`crun run`')?.t.perSecond;
    L.push('### Throughput (containers running /bin/true, created → exited → deleted)', '');
    L.push('| | containers | concurrency | wall s | containers/s | latency median ms | p90 ms | / runc | / crun |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of r.throughput) L.push(`| ${x.name} | ${x.t.count} | ${x.t.concurrency} | ${(x.t.wallMs / 1000).toFixed(2)} | ${x.t.perSecond.toFixed(1)} | ${fmtMs(x.t.latency.median)} | ${fmtMs(x.t.latency.p90)} | ${b ? `${(x.t.perSecond / b).toFixed(2)}×` : '—'} | ${c ? `${(x.t.perSecond / c).toFixed(2)}×` : '—'} |`);
    L.push('');
  }
  if (r.ops) {
    L.push('### Operations on a running container (`sleep 100000`)', '', 'crun rows include its nsenter wrapper (see the start latency table); the library rows are a warm process calling `Container` methods.', '');
    for (const o of r.ops) {
      L.push(`**${o.op}**`, '');
      const crunRow = o.rows.find((x) => x.name.startsWith('`crun'))?.s.median;
      L.push(...rowsTable(o.rows, { runc: o.rows.find((x) => x.name.startsWith('`runc'))?.s.median, ...(crunRow === undefined ? {} : { crun: crunRow }) }), '');
    }
  }
  if (r.breakdown) {
    L.push(`### Start breakdown (kernel layer, warm process, ${r.breakdown.n} starts)`, '');
    L.push('| phase | median ms | mean ms | p90 ms |', '|---|---:|---:|---:|');
    for (const [k, s] of r.breakdown.phases) L.push(`| ${k} | ${fmtMs(s.median)} | ${fmtMs(s.mean)} | ${fmtMs(s.p90)} |`);
    L.push(`| **total** (loadBundle → exit reaped) | **${fmtMs(r.breakdown.total.median)}** | ${fmtMs(r.breakdown.total.mean)} | ${fmtMs(r.breakdown.total.p90)} |`, '');
    L.push('What the library adds on top (the warm start row minus this total): state dir, cgroups created/joined/removed, the exec fifo, and the event records (create, start, exit, each fsync\'d).', '');
  }
  if (r.memory) {
    const m = r.memory.perContainer;
    L.push('### Supervisor memory', '');
    L.push(`Idle \`cordon daemon\` (fresh root, nothing supervised, ${r.memory.idle.readyMs.toFixed(0)} ms to its control socket): VmRSS **${kb(r.memory.idle.rssKB * 1024)} KB** after ${(r.memory.idle.settledMs / 1000).toFixed(1)} s idle (PSS ${kb(r.memory.idle.pssKB * 1024)} KB; ${kb(r.memory.idle.earlyRssKB * 1024)} KB 2 s after start-up, before V8's memory reducer shrank the idle heap).`, '');
    L.push(`${m.containers} sleeping containers started by one Cordon (a child process, GC forced before each sample): RSS ${kb(m.baseline.rss)} → ${kb(m.after.rss)} KB, **${m.perContainerRssKB.toFixed(1)} KB per container** (V8 heap ${m.perContainerHeapKB.toFixed(1)} KB, fds ${m.perContainerFds.toFixed(1)}); create + start p50 ${fmtMs(m.createStartMs.p50)} ms; leftovers after destroy: ${m.leftovers.length ? m.leftovers.slice(0, 5).join('; ') : 'none'}.`, '');
    L.push(r.memory.shimNote, '');
  }
  if (r.events) {
    const a = r.events.append;
    const rp = r.events.replay;
    L.push('### Events', '');
    L.push('| what | events | events/s | notes |', '|---|---:|---:|---|');
    L.push(`| journal append, one fsync'd record each | ${a.single.n} | ${a.single.perSec.toFixed(0)} | p50 ${a.single.p50.toFixed(3)} ms, p99 ${a.single.p99.toFixed(3)} ms; bare fsync p50 ${a.fsync.p50.toFixed(3)} ms |`);
    L.push(`| journal append, ${a.batched.batch} a batch | ${a.batched.n} | ${a.batched.perSec.toFixed(0)} | one fsync a batch |`);
    L.push(`| EventRecorder.record | ${a.recorder.n} | ${a.recorder.perSec.toFixed(0)} | machine check + expected sequence + fsync |`);
    L.push('');
    L.push(`Replay of ${rp.events.toLocaleString('en-US')} events (${(rp.bytes / 2 ** 20).toFixed(1)} MiB, ${rp.containers} containers): ${rp.runs.map((x) => `${x.totalMs.toFixed(0)} ms`).join(', ')} (open+CRC ${rp.runs[0].openMs.toFixed(0)}, parse ${rp.runs[0].readMs.toFixed(0)}, replayFacts ${rp.runs[0].replayMs.toFixed(0)}, snapshots ${rp.runs[0].snapshotMs.toFixed(0)} ms in the first); Supervisor.start on the same log ${rp.supervisorStartMs.toFixed(0)} ms.`, '');
  }
  L.push('### Event latency over NATS', '');
  L.push(r.nats?.skipped ? `Not measured: ${r.nats.skipped}.` : (r.nats?.markdown ?? 'Not measured.'), '');
  L.push(`Cleanup: ${r.leftovers.length ? `**left behind: ${r.leftovers.join('; ')}**` : 'nothing left (containers, cgroups, state roots, work directory)'}.`, '');
  return L.join('\n');
}

/** Replace the section starting with `## Harness` in file (or put it first), keeping every other section. */
export function writeSection(file: string, text: string): void {
  const cur = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n';
  const lines = cur.replace(/\n*$/, '').split('\n');
  const start = lines.findIndex((l) => l.startsWith('## Harness'));
  const block = text.replace(/\n+$/, '').split('\n');
  let out: string[];
  if (start < 0) {
    const first = lines.findIndex((l) => l.startsWith('## '));
    const at = first < 0 ? lines.length : first;
    out = [...lines.slice(0, at), ...(at === lines.length ? [''] : []), ...block, '', ...lines.slice(at)];
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    out = [...lines.slice(0, start), ...block, ...(end < lines.length ? ['', ...lines.slice(end)] : [])];
  }
  fs.writeFileSync(file, out.join('\n').replace(/\n*$/, '\n'));
}
