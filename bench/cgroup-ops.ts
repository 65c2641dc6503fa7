/**
 * Cgroup verbs, cordon against runc, on the same kind of container: busybox `sleep 1000` with runc's default
 * config (`runc spec`, terminal off) plus a 64 MiB memory limit, one container per runtime.
 *   - CLI, interleaved in one process (the A/B order alternating each round), each call a fresh process:
 *       `cordon events --stats ID` vs `runc events --stats ID` (one stats sample);
 *       `cordon pause ID && cordon resume ID` vs the same with runc (timed together).
 *   - In-process library, from a warm process (what a supervisor pays, no CLI): CgroupOperations.stats,
 *     stats plus the runc JSON line `events --stats` prints, and CgroupOperations.pause + resume.
 * min / median / p90 per operation and the median's ratio to runc's; a run is appended under
 * "## Cgroup operations" in bench/RESULTS.md (the file and its other sections are kept).
 *
 * Usage: node dist/bench/cgroup-ops.js [--rounds N] [--warmup N] [--rootfs DIR] [--no-write]
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OciRuntime } from '../actors/oci-runtime.js';
import { jsonWithBigints, runcStats } from '../actors/runc-events.js';
import { type Summary, summarize } from './run-latency.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(repo, 'bin', 'cordon.js');
const argv = process.argv.slice(2);
const arg = (n: string) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
/** Node processes run without NODE_EXTRA_CA_CERTS (it adds ~50 ms to every start here). */
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

/** One timed row of the table. */
interface Row {
  op: string;
  who: string;
  s: Summary;
  /** The runc row this one is compared with. */
  vs?: string;
}

function check(what: string, r: SpawnSyncReturns<string>): string {
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** Run a command to its end (stdout/stderr piped: none of these leave a process holding them). */
function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
}

/** A bundle with runc's own default config, `sleep 1000` and a memory limit, the rootfs given by absolute path. */
function makeBundle(dir: string, rootfs: string): void {
  fs.mkdirSync(dir);
  check('runc spec', run('runc', ['spec', '--bundle', dir]));
  const file = path.join(dir, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    process: { terminal: boolean; args: string[] };
    root: { path: string };
    linux: { resources?: Record<string, unknown> };
  };
  spec.process.terminal = false;
  spec.process.args = ['sleep', '1000'];
  spec.root.path = rootfs;
  spec.linux.resources = { ...spec.linux.resources, memory: { limit: 64 * 1024 * 1024 } };
  fs.writeFileSync(file, JSON.stringify(spec, null, '\t'));
}

/** Start a detached container; its stdio is /dev/null and a log file (a pipe would be held open by it). */
function startDetached(cmd: string, args: string[], log: string): void {
  const fd = fs.openSync(log, 'w');
  try {
    const r = spawnSync(cmd, args, { env, stdio: ['ignore', 'ignore', fd], timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${fs.readFileSync(log, 'utf8')}`);
  } finally {
    fs.closeSync(fd);
  }
}

function timed(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

async function timedAsync(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** One `events --stats` sample: a single JSON line of type "stats" with a memory limit of 64 MiB. */
function checkStats(who: string, out: string): void {
  const lines = out.trim().split('\n');
  const ev = JSON.parse(lines[0]) as { type: string; data: { memory: { usage: { limit: number; usage: number } } } };
  if (lines.length !== 1 || ev.type !== 'stats' || ev.data.memory.usage.limit !== 64 * 1024 * 1024 || !(ev.data.memory.usage.usage > 0)) {
    throw new Error(`${who} events --stats: unexpected output ${out.slice(0, 300)}`);
  }
}

const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

function table(rows: Row[]): string {
  const med = new Map(rows.map((r) => [`${r.op}|${r.who}`, r.s.median]));
  const lines = ['| operation | runtime | min ms | median ms | p90 ms | n | median / runc |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    const base = r.vs ? med.get(r.vs) : undefined;
    lines.push(`| ${r.op} | ${r.who} | ${fmt(r.s.min)} | ${fmt(r.s.median)} | ${fmt(r.s.p90)} | ${r.s.n} | ${base ? `${(r.s.median / base).toFixed(2)}×` : '—'} |`);
  }
  return lines.join('\n');
}

/** Append a run under "## Cgroup operations" (made if missing) in bench/RESULTS.md; every other section stays. */
export function appendResults(block: string, file = path.join(repo, 'bench', 'RESULTS.md')): string {
  const cur = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmark results\n';
  const lines = cur.replace(/\n*$/, '').split('\n');
  block = block.replace(/\n+$/, '');
  const start = lines.findIndex((l) => l.trim() === '## Cgroup operations');
  let out: string[];
  if (start < 0) out = [...lines, '', '## Cgroup operations', '', ...block.split('\n')];
  else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end < 0) end = lines.length;
    const before = lines.slice(0, end);
    while (before.length > start + 1 && before[before.length - 1].trim() === '') before.pop();
    out = [...before, '', ...block.split('\n'), ...(end < lines.length ? ['', ...lines.slice(end)] : [])];
  }
  fs.writeFileSync(file, out.join('\n') + '\n');
  return file;
}

async function main(): Promise<void> {
  const rounds = Number(arg('rounds') ?? 30);
  const warmup = Number(arg('warmup') ?? 3);
  const rootfs = path.resolve(arg('rootfs') ?? path.join(repo, '.cache/rootfs/busybox'));
  if (!fs.existsSync(path.join(rootfs, 'bin', 'sleep'))) throw new Error(`no busybox rootfs at ${rootfs} (run scripts/rootfs.sh)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-cgroup-'));
  const bundle = path.join(tmp, 'bundle');
  const roots = { cordon: path.join(tmp, 'root-cordon'), runc: path.join(tmp, 'root-runc') };
  // Different ids: a cgroup is named after its container, and both would get /sys/fs/cgroup/<c>/<id>.
  const ids = { cordon: `bench-cg-cordon-${process.pid}`, runc: `bench-cg-runc-${process.pid}` };
  const cordon = (...a: string[]) => run(process.execPath, [CLI, '--root', roots.cordon, ...a]);
  const runc = (...a: string[]) => run('runc', ['--root', roots.runc, ...a]);
  const started: Array<() => void> = [];
  const cleanup = () => {
    for (const stop of started.splice(0)) {
      try {
        stop();
      } catch {
        // best effort
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    makeBundle(bundle, rootfs);
    startDetached(process.execPath, [CLI, '--root', roots.cordon, 'run', '-d', '-b', bundle, ids.cordon], path.join(tmp, 'cordon.log'));
    started.push(() => check('cordon delete', cordon('delete', '--force', ids.cordon)));
    startDetached('runc', ['--root', roots.runc, 'run', '-d', '-b', bundle, ids.runc], path.join(tmp, 'runc.log'));
    started.push(() => check('runc delete', runc('delete', '--force', ids.runc)));

    // Both behave before anything is timed: stats with the limit, pause gives "paused", resume "running".
    checkStats('cordon', check('cordon events', cordon('events', '--stats', ids.cordon)));
    checkStats('runc', check('runc events', runc('events', '--stats', ids.runc)));
    for (const [who, cli] of [['cordon', cordon], ['runc', runc]] as const) {
      check(`${who} pause`, cli('pause', ids[who]));
      const st = JSON.parse(check(`${who} state`, cli('state', ids[who]))) as { status: string };
      check(`${who} resume`, cli('resume', ids[who]));
      const st2 = JSON.parse(check(`${who} state`, cli('state', ids[who]))) as { status: string };
      if (st.status !== 'paused' || st2.status !== 'running') throw new Error(`${who}: pause/resume gave ${st.status}/${st2.status}`);
    }

    // CLI, interleaved: each round runs both runtimes' stats and pause+resume, the order alternating.
    const t: Record<string, number[]> = {};
    const add = (k: string, ms: number, i: number) => {
      if (i >= 0) (t[k] ??= []).push(ms);
    };
    const nodeBaseline: number[] = [];
    for (let i = -warmup; i < rounds; i++) {
      const order = i % 2 === 0 ? (['cordon', 'runc'] as const) : (['runc', 'cordon'] as const);
      for (const who of order) {
        const cli = who === 'cordon' ? cordon : runc;
        let out = '';
        add(`stats|${who}`, timed(() => (out = check(`${who} events`, cli('events', '--stats', ids[who])))), i);
        if (i === rounds - 1) checkStats(who, out);
      }
      for (const who of order) {
        const cli = who === 'cordon' ? cordon : runc;
        add(
          `pause|${who}`,
          timed(() => {
            check(`${who} pause`, cli('pause', ids[who]));
            check(`${who} resume`, cli('resume', ids[who]));
          }),
          i,
        );
      }
      // What any node CLI pays before its first line of its own code runs.
      const ms = timed(() => check('node -e 0', run(process.execPath, ['-e', '0'])));
      if (i >= 0) nodeBaseline.push(ms);
    }

    // In-process, warm: the library calls a supervisor makes (no recorder: cgroup work only).
    const ops = new OciRuntime(roots.cordon).cgroups;
    const lib: Record<string, number[]> = { stats: [], json: [], pause: [] };
    for (let i = -warmup; i < rounds; i++) {
      const a = timed(() => void ops.stats(ids.cordon));
      const b = timed(() => {
        const s = ops.stats(ids.cordon);
        jsonWithBigints({ type: 'stats', id: ids.cordon, data: runcStats(s.cgroup, s.interfaces) });
      });
      const c = await timedAsync(async () => {
        await ops.pause(ids.cordon);
        await ops.resume(ids.cordon);
      });
      if (i >= 0) {
        lib.stats.push(a);
        lib.json.push(b);
        lib.pause.push(c);
      }
    }
    const stats = ops.stats(ids.cordon);
    if (stats.cgroup.memory.usage.limit !== 64n * 1024n * 1024n) throw new Error('in-process stats: wrong memory limit');

    const rows: Row[] = [
      { op: '`events --stats` (CLI)', who: 'runc', s: summarize(t['stats|runc']) },
      { op: '`events --stats` (CLI)', who: 'cordon', s: summarize(t['stats|cordon']), vs: '`events --stats` (CLI)|runc' },
      { op: '`pause` + `resume` (CLI)', who: 'runc', s: summarize(t['pause|runc']) },
      { op: '`pause` + `resume` (CLI)', who: 'cordon', s: summarize(t['pause|cordon']), vs: '`pause` + `resume` (CLI)|runc' },
      { op: '`node -e 0` (baseline)', who: 'node', s: summarize(nodeBaseline) },
      { op: 'CgroupOperations.stats (in-process)', who: 'cordon', s: summarize(lib.stats), vs: '`events --stats` (CLI)|runc' },
      { op: 'stats + runc JSON line (in-process)', who: 'cordon', s: summarize(lib.json), vs: '`events --stats` (CLI)|runc' },
      { op: 'CgroupOperations.pause + resume (in-process)', who: 'cordon', s: summarize(lib.pause), vs: '`pause` + `resume` (CLI)|runc' },
    ];
    const runcVersion = run('runc', ['--version']).stdout.split('\n')[0].replace(/^runc version /, '');
    const nproc = run('nproc', []).stdout.trim();
    const cmdline = ['node', path.relative(repo, process.argv[1]), ...argv].join(' ');
    const header = [
      `### ${new Date().toISOString()} — \`${cmdline}\``,
      '',
      `Machine: Linux ${os.release()} (\`uname -r\`), nproc ${nproc}, node ${process.version}, runc ${runcVersion}. ` +
        `Container: busybox \`sleep 1000\`, runc's default config (\`runc spec\`, terminal off) + memory.limit 64 MiB, one per runtime. ` +
        `${rounds} rounds after ${warmup} warm-ups; CLI rows interleaved (A/B order alternating per round), each call a fresh process, NODE_EXTRA_CA_CERTS unset; ` +
        'the cordon CLI verbs that change a container (pause, resume) also append to the event journal (fsync). ' +
        'In-process rows: a warm process calling CgroupOperations on the cordon container; their ratio is to the runc CLI row of the same operation.',
    ].join('\n');
    const text = `${header}\n\n${table(rows)}\n`;
    process.stdout.write(`${text}\n`);
    if (!argv.includes('--no-write')) process.stdout.write(`appended to ${appendResults(text)}\n`);
  } finally {
    cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    process.stderr.write(`cgroup-ops: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
