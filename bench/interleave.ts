/**
 * The harness's measuring core: summary statistics, an interleaved runner (A B, B A, ... in one process,
 * the order alternating each round so neither side always runs first), timed commands without
 * NODE_EXTRA_CA_CERTS, and a fixed-concurrency throughput runner.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** min / median / p90 / p99 / mean of a sample of milliseconds. */
export interface Summary {
  min: number;
  median: number;
  p90: number;
  p99: number;
  mean: number;
  n: number;
}

/** Summarise a sample (NaN fields for an empty one). */
export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  // The median of an even sample is the mean of the two middle values.
  const median = s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { min: s[0] ?? NaN, median, p90: at(0.9), p99: at(0.99), mean, n: s.length };
}

/** One side of an interleaved comparison: runs once and returns milliseconds (or undefined to time it here). */
export interface Contender {
  name: string;
  /** One measured call; round is negative during warm-up. Returns its own time, or nothing to be timed around. */
  run: (round: number) => Promise<number | void> | number | void;
}

/** Run every contender once per round, interleaved, order alternating; warm-up rounds are not kept. */
export async function interleave(contenders: readonly Contender[], opts: { rounds: number; warmup: number }): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let round = -opts.warmup; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const t0 = performance.now();
      const own = await c.run(round);
      const ms = typeof own === 'number' ? own : performance.now() - t0;
      if (round >= 0) out.get(c.name)?.push(ms);
    }
  }
  return out;
}

/** The environment of every measured process: ours without NODE_EXTRA_CA_CERTS (it costs Node ~50 ms a start). */
export const benchEnv: NodeJS.ProcessEnv = (() => {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
})();

/** A failed measured command: which, how it ended, its stderr. */
export class CommandFailed extends Error {}

/** Run a command to its end with stdout/stderr piped; throws CommandFailed unless it exits 0. */
export function runChecked(argv: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(argv[0], argv.slice(1), { env: benchEnv, encoding: 'utf8', stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], input: opts.input, timeout: opts.timeoutMs ?? 60_000 });
  if (r.error) throw new CommandFailed(`${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new CommandFailed(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.trim().slice(0, 500)}`);
  return r;
}

let ioFile: { path: string; fd: number } | undefined;

/** The file that takes a measured command's stdout and stderr (a pipe would be held open by a container it starts). */
function io(): { path: string; fd: number } {
  if (!ioFile) {
    const p = path.join(os.tmpdir(), `cordon-bench-io-${process.pid}.log`);
    ioFile = { path: p, fd: fs.openSync(p, 'a') };
    process.once('exit', () => fs.rmSync(p, { force: true }));
  }
  fs.ftruncateSync(ioFile.fd, 0);
  return ioFile;
}

/**
 * Run a command that may leave a container holding its stdio (create, run -d, the measured runs): stdout and
 * stderr go to a file; throws CommandFailed with that output unless it exits 0.
 */
export function runDetached(argv: readonly string[], timeoutMs = 60_000): void {
  const f = io();
  const r = spawnSync(argv[0], argv.slice(1), { env: benchEnv, stdio: ['ignore', f.fd, f.fd], timeout: timeoutMs });
  if (r.error) throw new CommandFailed(`${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new CommandFailed(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${fs.readFileSync(f.path, 'utf8').trim().slice(0, 500)}`);
}

/** Milliseconds of one command run to its end (output to a file, kept for the error). */
export function timeCommand(argv: readonly string[]): number {
  const t0 = performance.now();
  runDetached(argv);
  return performance.now() - t0;
}

/** The same, asynchronously (for concurrent runs): resolves with milliseconds, rejects unless exit 0. */
export function timeCommandAsync(argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { env: benchEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve(performance.now() - t0);
      else reject(new CommandFailed(`${argv.join(' ')} exited ${code ?? signal}: ${err.trim().slice(0, 500)}`));
    });
  });
}

/** Result of a throughput run. */
export interface Throughput {
  count: number;
  concurrency: number;
  wallMs: number;
  perSecond: number;
  latency: Summary;
}

/** Run `count` jobs with at most `concurrency` at a time; containers (jobs) per second over the wall time. */
export async function throughput(count: number, concurrency: number, job: (i: number) => Promise<unknown>): Promise<Throughput> {
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const s = performance.now();
      await job(i);
      lat.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const wallMs = performance.now() - t0;
  return { count, concurrency, wallMs, perSecond: (count / wallMs) * 1000, latency: summarize(lat) };
}

/** Milliseconds in a readable width: two decimals under 10, one above. */
export function fmtMs(x: number): string {
  if (!Number.isFinite(x)) return '—';
  return x < 10 ? x.toFixed(2) : x.toFixed(1);
}

/** A ratio as "0.42×", or "—" without a base. */
export function fmtRatio(x: number, base: number | undefined): string {
  return base && Number.isFinite(base) && base > 0 && Number.isFinite(x) ? `${(x / base).toFixed(2)}×` : '—';
}
