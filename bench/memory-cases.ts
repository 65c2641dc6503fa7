/**
 * Supervisor memory: the RSS of an idle `cordon daemon` (a fresh state root, nothing to supervise), and
 * per additional sleeping container (bench/events.ts's child process: one Cordon starts M containers).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { benchEnv } from './interleave.js';
import { CORDON_CLI, type BenchWorld } from './runtimes.js';

/** RSS and PSS of the idle daemon, in KB: just after start-up, and after settling (V8 shrinks an idle heap after ~10 s). */
export interface IdleDaemon {
  rssKB: number;
  pssKB: number;
  /** VmRSS 2 s after the control socket appeared. */
  earlyRssKB: number;
  /** How long it idled before rssKB/pssKB were read. */
  settledMs: number;
  /** Milliseconds from spawn until its control socket existed. */
  readyMs: number;
}

const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);

/** Start `cordon daemon` on a fresh root, read its RSS after 2 s and after settleMs, stop it. */
export async function idleDaemon(w: BenchWorld, settleMs = 12_000): Promise<IdleDaemon> {
  const root = path.join(w.dir, 'root-daemon');
  const t0 = performance.now();
  const child = spawn(process.execPath, [CORDON_CLI, '--root', root, 'daemon'], { env: benchEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    let readyMs = NaN;
    for (let i = 0; i < 600; i++) {
      if (fs.existsSync(path.join(root, 'cordon.sock'))) {
        readyMs = performance.now() - t0;
        break;
      }
      if (child.exitCode !== null) throw new Error(`cordon daemon exited ${child.exitCode}: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (Number.isNaN(readyMs)) throw new Error(`cordon daemon: no control socket after 30 s: ${err}`);
    const early = Math.min(2000, settleMs);
    await new Promise((r) => setTimeout(r, early));
    const earlyRssKB = field(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'), 'VmRSS');
    await new Promise((r) => setTimeout(r, settleMs - early));
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const smaps = fs.readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8');
    return { rssKB: field(status, 'VmRSS'), pssKB: field(smaps, 'Pss'), earlyRssKB, settledMs: settleMs, readyMs };
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
