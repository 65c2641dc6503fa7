/**
 * `npm run bench`: every case of issue 8 against runc and crun, interleaved in one process, results and
 * targets written to bench/RESULTS.md (its "## Harness" section; the history below it is kept).
 *
 * Usage: node dist/bench/main.js [--quick] [--cases a,b,...] [--out FILE] [--json FILE] [--rootfs DIR]
 *   cases: start, cycle, throughput, ops, breakdown, memory, events, nats (default: all)
 *   --quick: small samples (the CI smoke run; writes --out, or nothing, never bench/RESULTS.md by default)
 * Containers, cgroups, state roots and temp files of a run are removed at the end, on failure and on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cordon } from '../actors/cordon.js';
import { appendBench, replayBench, runMemoryChild, shimRss } from './events.js';
import { idleDaemon } from './memory-cases.js';
import { runningOps } from './ops-cases.js';
import { type HarnessResult, checkTargets, toMarkdown, writeSection } from './report.js';
import { BenchWorld, REPO, machine } from './runtimes.js';
import { cliCycle, containerThroughput, startBreakdown, startLatency } from './start-cases.js';

/** Every case name, in run order. */
export const CASES = ['start', 'cycle', 'throughput', 'ops', 'breakdown', 'memory', 'events', 'nats'] as const;

const argv = process.argv.slice(2);
const arg = (n: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes('--quick');
const log = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** The last session's measured containerd-shim-runc-v2 RSS (bench/RESULTS.md, "Event log" (c)). */
const SHIM_NOTE = 'Comparison: containerd runs one containerd-shim-runc-v2 per container; it was measured at 13.3 MB RSS per container (13,356 KB VmRSS, PSS 12,450 KB; containerd 1.6.20~ds1-1+deb12u3 from Debian 12) — see "Event log" (c) below. cordon has no per-container process.';

async function main(): Promise<number> {
  const selected = (arg('cases') ?? CASES.join(',')).split(',').map((s) => s.trim());
  for (const c of selected) if (!(CASES as readonly string[]).includes(c)) throw new Error(`unknown case ${JSON.stringify(c)}; cases: ${CASES.join(', ')}`);
  const has = (c: string) => selected.includes(c);
  const sizes = quick
    ? { rounds: 5, warmup: 1, throughputCount: 16, concurrency: 8, breakdown: 10, idleContainers: 10, appends: 500, replayContainers: 2000 }
    : { rounds: 30, warmup: 3, throughputCount: 200, concurrency: 8, breakdown: 100, idleContainers: 500, appends: 20_000, replayContainers: 20_000 };
  const rootfs = fs.realpathSync(path.resolve(arg('rootfs') ?? path.join(REPO, '.cache/rootfs/busybox')));
  const w = new BenchWorld(rootfs);
  const stop = (sig: NodeJS.Signals) => {
    log(`${sig}: cleaning up`);
    w.cleanup();
    process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result: HarnessResult = {
    meta: { date: new Date().toISOString(), machine: machine(), versions: w.versions(), command: ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' '), quick, sizes, workDir: w.dir },
    targets: [],
    leftovers: [],
  };
  if (result.meta.versions[0].includes('unbundled')) log('warning: the cordon CLI will run unbundled (dist/cli-bundle is missing or stale): run `npm run build` first');
  let cordon: Cordon | undefined;
  try {
    await w.startCrunNamespace();
    if (has('start') || has('throughput') || has('ops')) cordon = await Cordon.open({ root: w.roots['cordon-lib'] });
    if (has('start') && cordon) {
      log('start latency');
      result.startLatency = await startLatency(w, cordon, sizes);
    }
    if (has('cycle')) {
      log('create + start + delete');
      result.cycle = await cliCycle(w, sizes);
    }
    if (has('throughput') && cordon) {
      log(`throughput: ${sizes.throughputCount} containers at concurrency ${sizes.concurrency}`);
      result.throughput = await containerThroughput(w, cordon, sizes);
    }
    if (has('ops') && cordon) {
      log('operations on a running container');
      result.ops = await runningOps(w, cordon, sizes);
    }
    if (has('breakdown')) {
      log('start breakdown');
      result.breakdown = { ...(await startBreakdown(w, sizes.breakdown)), n: sizes.breakdown };
    }
    await cordon?.close();
    cordon = undefined;
    if (has('memory')) {
      log(`memory: idle daemon, ${sizes.idleContainers} sleeping containers`);
      const idle = await idleDaemon(w, quick ? 500 : 12_000);
      const perContainer = await runMemoryChild(sizes.idleContainers, rootfs);
      const shims = shimRss().shims;
      const shimNote = shims.length ? `${SHIM_NOTE} Running now: ${shims.map((s) => `${s.name} ${s.rssKB} KB`).join(', ')}.` : SHIM_NOTE;
      result.memory = { idle, perContainer, shimNote };
      result.leftovers.push(...perContainer.leftovers);
    }
    if (has('events')) {
      log(`events: ${sizes.appends} appends, replay of ${sizes.replayContainers * 5} events`);
      const dir = fs.mkdtempSync(path.join(w.dir, 'events-'));
      result.events = { append: await appendBench(dir, sizes.appends, 100), replay: await replayBench(dir, sizes.replayContainers) };
      fs.rmSync(dir, { recursive: true, force: true });
    }
    if (has('nats')) result.nats = natsEvents();
  } finally {
    await cordon?.close().catch(() => {});
    log('cleanup');
    result.leftovers.push(...w.cleanup(), ...leftoverStateRoots());
  }
  result.targets = checkTargets(result);
  const md = toMarkdown(result);
  const out = arg('out') ?? (quick ? undefined : path.join(REPO, 'bench', 'RESULTS.md'));
  if (out) {
    writeSection(out, md);
    log(`wrote ${out}`);
  } else process.stdout.write(md);
  const json = arg('json');
  if (json) fs.writeFileSync(json, JSON.stringify(result, null, 2));
  for (const t of result.targets) log(`target: ${t.what}: ${t.measured} — ${t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED'}`);
  return result.leftovers.length ? 1 : 0;
}

/** Containers a bench run could have left in the default roots (it never uses them; checked anyway). */
function leftoverStateRoots(): string[] {
  const mine = `cb${process.pid}-`;
  const out: string[] = [];
  for (const root of ['/run/runc', '/run/crun', '/run/cordon']) {
    try {
      for (const e of fs.readdirSync(root)) if (e.startsWith(mine)) out.push(path.join(root, e));
    } catch {
      // no such root
    }
  }
  return out;
}

/**
 * NATS event latency: runs bench/nats-events.js (another helper's; it starts its own nats-server) when it is in
 * this tree, with --no-write, and shows its section. The p99 checked against the target is the daemon-outbox
 * row (journal append → JetStream → remote subscriber), or a `p99_ms=N` line if the script prints one.
 */
function natsEvents(): NonNullable<HarnessResult['nats']> {
  const file = path.join(REPO, 'dist', 'bench', 'nats-events.js');
  if (!fs.existsSync(file)) return { markdown: '', skipped: 'bench/nats-events.ts is not in this tree' };
  log('NATS event latency (bench/nats-events.js)');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const args = ['--no-write', ...(quick ? ['--events', '200', '--burst', '2000', '--skip-containers'] : [])];
  const r = spawnSync(process.execPath, [file, ...args], { env, encoding: 'utf8', timeout: quick ? 60_000 : 900_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) return { markdown: '', skipped: `bench/nats-events.js exited ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}` };
  const out = r.stdout;
  const at = out.search(/^## /m);
  // Its headings go two levels down, under this section's "### Event latency over NATS".
  const markdown = (at >= 0 ? out.slice(at) : out).replace(/^(#{2,}) /gm, '$1## ').replace(/^p99_ms=.*$/m, '').trim();
  const row = /^\| daemon outbox[^|]*\|[^|]*\|[^|]*\|\s*([\d,.]+) ms/m.exec(out);
  const line = /p99_ms=([\d.]+)/.exec(out);
  const p99 = line ? Number(line[1]) : row ? Number(row[1].replace(/,/g, '')) : undefined;
  return { markdown: `Command: \`node dist/bench/nats-events.js ${args.join(' ')}\` (run by the harness).\n\n${markdown}`, p99Ms: p99 };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
