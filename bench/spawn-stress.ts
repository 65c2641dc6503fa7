/**
 * Spawn-engine endurance: N consecutive container starts (full runc-default config, /bin/true) from one
 * process whose event loop is loaded — a 1 ms timer allocating garbage, threadpool work, and a busy
 * Worker. Counts crashes (any exit other than 0), hangs (no exit within the timeout) and leaked fds,
 * and prints latency percentiles. Usage: node dist/bench/spawn-stress.js [--count N] [--rootfs DIR]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { specToSetup } from '../config/index.js';
import { spawnContainer } from '../kernel/index.js';
import { defaultSpecJson } from '../cli/spec.js';

/** Result of a stress run. */
export interface StressResult {
  count: number;
  ok: number;
  crashes: number;
  hangs: number;
  failures: string[];
  fdsBefore: number;
  fdsAfter: number;
  zombies: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  wallMs: number;
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const openFds = () => fs.readdirSync('/proc/self/fd').length;

/** Start `count` containers one after another under load. */
export async function spawnStress(count: number, rootfs: string, hangMs = 10_000): Promise<StressResult> {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-stress-'));
  fs.symlinkSync(rootfs, path.join(bundle, 'rootfs'));
  const spec = JSON.parse(defaultSpecJson()) as { process: { args: string[] }; root: { path: string } };
  spec.process.args = ['/bin/true'];
  spec.root.path = rootfs;
  const { setup } = specToSetup(spec, bundle);

  // Load: garbage every millisecond, threadpool hashing, and a Worker spinning on its own loop.
  let garbage: unknown[] = [];
  const timer = setInterval(() => {
    garbage = Array.from({ length: 2000 }, (_, i) => ({ i, s: 'x'.repeat(i % 64) }));
  }, 1);
  let pool = true;
  const poolWork = () => {
    if (pool) crypto.pbkdf2('pw', 'salt', 2000, 32, 'sha256', poolWork);
  };
  for (let i = 0; i < 4; i++) poolWork();
  const worker = new Worker('let x = 0; setInterval(() => { for (let i = 0; i < 1e5; i++) x += i; }, 1);', { eval: true });

  const fdsBefore = openFds();
  const times: number[] = [];
  const failures: string[] = [];
  let crashes = 0, hangs = 0;
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const s = performance.now();
      const init = spawnContainer(setup, { startGate: 'pipe', stdio: [0, 1, 2] });
      let timeout: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((res) => {
        timeout = setTimeout(() => res('hang'), hangMs);
      });
      const outcome = await Promise.race([init.start().then(() => init.exited), hang]).catch((e: Error) => e);
      clearTimeout(timeout);
      if (outcome === 'hang') {
        hangs++;
        failures.push(`#${i}: no exit within ${hangMs} ms (pid ${init.pid})`);
        init.kill(9);
        await init.exited;
      } else if (outcome instanceof Error) {
        crashes++;
        failures.push(`#${i}: ${outcome.message}`);
        await init.exited;
      } else if (outcome.code !== 0) {
        crashes++;
        failures.push(`#${i}: exit ${JSON.stringify(outcome)}`);
      } else times.push(performance.now() - s);
    }
  } finally {
    clearInterval(timer);
    pool = false;
    await worker.terminate();
    fs.rmSync(bundle, { recursive: true, force: true });
  }
  void garbage;
  const wallMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 50));
  const zombies = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      return st.slice(st.lastIndexOf(')') + 2).startsWith('Z') && st.split(' ')[3] === String(process.pid);
    } catch {
      return false;
    }
  }).length;
  times.sort((a, b) => a - b);
  return {
    count, ok: times.length, crashes, hangs, failures: failures.slice(0, 20), fdsBefore, fdsAfter: openFds(), zombies,
    p50: pct(times, 50), p90: pct(times, 90), p99: pct(times, 99), max: times[times.length - 1] ?? NaN, wallMs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (n: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const count = Number(arg('count') ?? 2000);
  const rootfs = path.resolve(arg('rootfs') ?? '.cache/rootfs/busybox');
  const r = await spawnStress(count, rootfs);
  const f = (x: number) => x.toFixed(2);
  console.log(`spawn stress: ${r.count} starts under load (1 ms garbage timer, 4 threadpool hashers, busy Worker)`);
  console.log(`  ok ${r.ok}, crashes ${r.crashes}, hangs ${r.hangs}, zombies ${r.zombies}, fds ${r.fdsBefore} -> ${r.fdsAfter}`);
  console.log(`  start->exit reaped ms: p50 ${f(r.p50)}  p90 ${f(r.p90)}  p99 ${f(r.p99)}  max ${f(r.max)}; wall ${(r.wallMs / 1000).toFixed(1)} s`);
  for (const x of r.failures) console.log(`  ${x}`);
  process.exitCode = r.crashes + r.hangs > 0 ? 1 : 0;
}
