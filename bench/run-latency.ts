/**
 * `cordon run` against `runc run` (and `crun run` where it works) on the same busybox bundle running
 * /bin/true, interleaved A B A B in one process, each a fresh CLI process timed from spawn to exit.
 * Usage: node dist/bench/run-latency.js [--runs N] [--rootfs DIR]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultSpecJson } from '../cli/spec.js';

/** One runtime under test: how to run a container once. */
interface Runner {
  name: string;
  argv: (id: string) => string[];
}

/** min / median / p90 of a sample. */
export interface Summary {
  min: number;
  median: number;
  p90: number;
  n: number;
}

/** Summarise a sample of milliseconds. */
export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))], n: s.length };
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Run the interleaved comparison; returns the summaries by runner name. */
export function runLatency(runs: number, rootfs: string): Record<string, Summary> {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-'));
  const spec = JSON.parse(defaultSpecJson()) as { process: { args: string[] }; root: { path: string }; ociVersion: string };
  spec.process.args = ['/bin/true'];
  spec.root.path = rootfs;
  spec.ociVersion = '1.0.2';
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  const roots = { cordon: path.join(bundle, 'root-cordon'), runc: path.join(bundle, 'root-runc') };
  const runners: Runner[] = [
    { name: 'cordon run', argv: (id) => [process.execPath, path.join(repo, 'bin/cordon.js'), '--root', roots.cordon, 'run', '-b', bundle, id] },
    { name: 'runc run', argv: (id) => ['runc', '--root', roots.runc, 'run', '-b', bundle, id] },
  ];
  if (!has('runc')) runners.pop();
  const times: Record<string, number[]> = Object.fromEntries(runners.map((r) => [r.name, []]));
  try {
    for (let i = -3; i < runs; i++) {
      for (const r of runners) {
        const [cmd, ...args] = r.argv(`b${i + 3}`);
        const t0 = performance.now();
        const res = spawnSync(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        const ms = performance.now() - t0;
        if (res.status !== 0) throw new Error(`${r.name} failed (${res.status}): ${res.stderr.toString()}`);
        if (i >= 0) times[r.name].push(ms); // three warm-up rounds
      }
    }
  } finally {
    fs.rmSync(bundle, { recursive: true, force: true });
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summarize(v)]));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (n: string) => {
    const i = process.argv.indexOf(`--${n}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const res = runLatency(Number(arg('runs') ?? 30), path.resolve(arg('rootfs') ?? path.join(repo, '.cache/rootfs/busybox')));
  const base = res['runc run']?.median;
  for (const [k, s] of Object.entries(res)) {
    console.log(`${k.padEnd(12)} min ${s.min.toFixed(1)} ms  median ${s.median.toFixed(1)} ms  p90 ${s.p90.toFixed(1)} ms  n=${s.n}${base ? `  ratio to runc ${(s.median / base).toFixed(2)}` : ''}`);
  }
}
