/**
 * Start cases of the harness, every one on the same /bin/true bundle (runc's default config):
 *   start latency — cordon through the library (a warm process), `cordon run` (a fresh CLI process),
 *   `runc run`, `crun run`, interleaved; the create + start + delete cycle through each CLI; throughput of
 *   N containers at concurrency C; and the breakdown of one cordon start (config parse, plan, compile,
 *   clone, setup in the child, execve, reap).
 */
import fs from 'node:fs';
import { Cordon } from '../actors/cordon.js';
import { loadBundle } from '../config/index.js';
import { spawnContainer } from '../kernel/index.js';
import { type Summary, type Throughput, interleave, summarize, throughput, timeCommand, timeCommandAsync } from './interleave.js';
import type { BenchWorld } from './runtimes.js';

/** A labelled sample. */
export interface Row {
  name: string;
  s: Summary;
  /** What the row is (shown under the table). */
  note?: string;
}

/** Sizes of one run. */
export interface StartSizes {
  rounds: number;
  warmup: number;
  throughputCount: number;
  concurrency: number;
}

/** Open /dev/null three times for a container's stdio. */
function devNull(): { stdio: number[]; close(): void } {
  const fd = fs.openSync('/dev/null', 'r+');
  return { stdio: [fd, fd, fd], close: () => fs.closeSync(fd) };
}

/** Start latency: warm library (request → exit reaped, and with destroy), the CLIs, node's own start. */
export async function startLatency(w: BenchWorld, cordon: Cordon, z: StartSizes): Promise<Row[]> {
  const nul = devNull();
  const destroyMs: number[] = [];
  const withDestroy: number[] = [];
  try {
    const contenders = [
      {
        name: 'cordon library (warm): create → exit reaped',
        run: async (round: number) => {
          const t0 = performance.now();
          const c = await cordon.create(w.id('warm'), { bundle: w.trueBundle, stdio: nul.stdio });
          const exit = await c.run();
          const ms = performance.now() - t0;
          if (exit.exitCode !== 0) throw new Error(`warm start: exit ${JSON.stringify(exit)}`);
          const t1 = performance.now();
          await c.destroy();
          if (round >= 0) {
            destroyMs.push(performance.now() - t1);
            withDestroy.push(performance.now() - t0);
          }
          return ms;
        },
      },
      { name: '`cordon run` (CLI)', run: () => timeCommand(w.cordon('run', '-b', w.trueBundle, w.id('cli'))) },
      ...(w.hasRunc ? [{ name: '`runc run`', run: () => timeCommand(w.runc('run', '-b', w.trueBundle, w.id('runc'))) }] : []),
      ...(w.hasCrun ? [{ name: '`crun run`', run: () => timeCommand(w.crun('run', '-b', w.trueBundle, w.id('crun'))) }] : []),
      ...(w.hasCrun ? [{ name: 'nsenter wrapper of crun (`nsenter … /bin/true`)', run: () => timeCommand([...w.crunPrefix(), '/bin/true']) }] : []),
      { name: '`node -e 0` (Node start floor)', run: () => timeCommand([process.execPath, '-e', '0']) },
    ];
    const t = await interleave(contenders, { rounds: z.rounds, warmup: z.warmup });
    const rows: Row[] = [...t].map(([name, xs]) => ({ name, s: summarize(xs) }));
    rows.splice(1, 0, { name: 'cordon library (warm): create → exit reaped → destroyed', s: summarize(withDestroy), note: `destroy alone: median ${summarize(destroyMs).median.toFixed(1)} ms` });
    return rows;
  } finally {
    nul.close();
  }
}

/** create + start + delete through each CLI (the container runs /bin/true; delete after it stopped). */
export async function cliCycle(w: BenchWorld, z: StartSizes): Promise<Row[]> {
  const cycle = (argv: (...a: string[]) => string[], tag: string) => () => {
    const id = w.id(tag);
    const t0 = performance.now();
    timeCommand(argv('create', '--bundle', w.trueBundle, id));
    timeCommand(argv('start', id));
    // /bin/true exits at once, but delete refuses a container that has not been seen to stop yet: retried (timed).
    for (let i = 0; ; i++) {
      try {
        timeCommand(argv('delete', id));
        break;
      } catch (e) {
        if (i > 50) throw e;
      }
    }
    return performance.now() - t0;
  };
  const contenders = [
    { name: 'cordon create + start + delete (CLI)', run: cycle((...a) => w.cordon(...a), 'cyc') },
    ...(w.hasRunc ? [{ name: 'runc create + start + delete', run: cycle((...a) => w.runc(...a), 'rcyc') }] : []),
    ...(w.hasCrun ? [{ name: 'crun create + start + delete', run: cycle((...a) => w.crun(...a), 'ccyc') }] : []),
  ];
  const t = await interleave(contenders, { rounds: Math.max(3, Math.ceil(z.rounds / 2)), warmup: Math.min(z.warmup, 2) });
  return [...t].map(([name, xs]) => ({ name, s: summarize(xs) }));
}

/** One throughput result, named. */
export interface ThroughputRow {
  name: string;
  t: Throughput;
}

/** N containers (create → exit → delete) at concurrency C, per runtime, one after the other. */
export async function containerThroughput(w: BenchWorld, cordon: Cordon, z: StartSizes): Promise<ThroughputRow[]> {
  const nul = devNull();
  try {
    const jobs: Array<{ name: string; job: (i: number) => Promise<unknown> }> = [
      {
        name: 'cordon library (warm)',
        job: async () => {
          const c = await cordon.create(w.id('tp'), { bundle: w.trueBundle, stdio: nul.stdio });
          const exit = await c.run();
          if (exit.exitCode !== 0) throw new Error(`throughput: exit ${JSON.stringify(exit)}`);
          await c.destroy();
        },
      },
      ...(w.hasRunc ? [{ name: '`runc run`', job: () => timeCommandAsync(w.runc('run', '-b', w.trueBundle, w.id('rtp'))) }] : []),
      ...(w.hasCrun ? [{ name: '`crun run`', job: () => timeCommandAsync(w.crun('run', '-b', w.trueBundle, w.id('ctp'))) }] : []),
      { name: '`cordon run` (CLI)', job: () => timeCommandAsync(w.cordonTp('run', '-b', w.trueBundle, w.id('ctp'))) },
    ];
    const out: ThroughputRow[] = [];
    for (const j of jobs) out.push({ name: j.name, t: await throughput(z.throughputCount, z.concurrency, j.job) });
    return out;
  } finally {
    nul.close();
  }
}

/** Per-phase means of a cordon start at the kernel layer (no state dir, cgroups or events), warm process. */
export async function startBreakdown(w: BenchWorld, n: number): Promise<{ phases: Array<[string, Summary]>; total: Summary }> {
  const nul = devNull();
  const ph: Record<string, number[]> = { 'config parse + validate (loadBundle)': [], 'plan build': [], 'plan compile (native arena)': [], 'clone (spawn call)': [], 'setup in the child (clone → start gate)': [], 'start gate → execve done': [], 'execve → exit reaped (/bin/true runs)': [] };
  const total: number[] = [];
  try {
    for (let i = -3; i < n; i++) {
      const t0 = performance.now();
      const b = await loadBundle(w.trueBundle);
      const t1 = performance.now();
      const init = spawnContainer(b.setup, { startGate: 'pipe', stdio: nul.stdio });
      await init.start();
      const st = await init.exited;
      const t2 = performance.now();
      if (st.code !== 0) throw new Error(`breakdown start: ${JSON.stringify(st)}`);
      if (i < 0) continue;
      const bd = init.breakdown;
      const tm = init.handle.timings;
      const vals = [t1 - t0, bd.planMs, bd.compileMs, bd.cloneMs, bd.setupMs ?? NaN, bd.execMs ?? NaN, (tm.reaped ?? NaN) - (tm.exec ?? NaN)];
      Object.values(ph).forEach((xs, k) => xs.push(vals[k]));
      total.push(t2 - t0);
    }
  } finally {
    nul.close();
  }
  return { phases: Object.entries(ph).map(([k, xs]) => [k, summarize(xs)]), total: summarize(total) };
}
