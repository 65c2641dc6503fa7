/**
 * Checkpoint and restore, cordon against runc, interleaved in one run on one busybox bundle (a counter that
 * writes /tmp/c every 50 ms): each round starts a container detached (not timed), times `checkpoint` (without
 * --leave-running) and `restore -d` from those images, and deletes it. Medians over the rounds, and the
 * ratios cordon / runc.
 *
 *   env -u NODE_EXTRA_CA_CERTS node dist/bench/checkpoint.js [--rounds 9] [--out FILE]
 *
 * CRIU cannot dump a container whose stdio is a host file (/dev/null: "Can't lookup mount") or a unix
 * socketpair (Node's child pipes), so every command here, and the containers it starts, gets real pipes: a
 * holder (`bash` with process substitutions) keeps a stdin pipe fed by nothing and an output pipe drained by
 * `cat` into a log, whose ends this process opens again through /proc. CRIU's dumps hang on machines where
 * hardware breakpoints never fire unless it runs with CRIU_FAULT=130: cordon sets that itself, runc is given
 * it in its environment (it passes that on to criu).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO, arg, emitTable } from './bench-options.js';
import { CommandFailed, type Contender, benchEnv, fmtMs, interleave, summarize } from './interleave.js';
import { BenchWorld, machine } from './runtimes.js';

const rounds = Number(arg('rounds') ?? 9);
const warmup = 1;
const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done';

const world = new BenchWorld(path.join(REPO, process.env.CORDON_ROOTFS ?? '.cache/rootfs/busybox'));
const runcEnv: NodeJS.ProcessEnv = { ...benchEnv, CRIU_FAULT: '130' };
const log = path.join(world.dir, 'stdio.log');

/** The pipes every command and container gets: [stdin read end, output write end, the same]. */
let holder: ChildProcess | undefined;
let holderKids: number[] = [];
let stdio: [number, number, number] | undefined;

async function openPipes(): Promise<void> {
  const h = spawn('bash', ['-c', `exec 3< <(exec sleep 1000000) 4> >(exec cat > '${log}'); echo ready; exec sleep 1000000`], { env: benchEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  holder = h;
  await new Promise<void>((resolve, reject) => {
    h.once('error', reject);
    h.once('exit', (code) => reject(new Error(`pipe holder exited ${code}`)));
    h.stdout?.once('data', () => resolve());
  });
  h.removeAllListeners('exit');
  const pid = h.pid as number;
  for (let i = 0; i < 100 && holderKids.length < 2; i++) {
    holderKids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    if (holderKids.length < 2) spawnSync('sleep', ['0.02']);
  }
  for (let i = 0; i < 100 && !fs.readlinkSync(`/proc/${pid}/exe`).includes('sleep'); i++) spawnSync('sleep', ['0.02']);
  if (!fs.readlinkSync(`/proc/${pid}/fd/3`).startsWith('pipe:') || !fs.readlinkSync(`/proc/${pid}/fd/4`).startsWith('pipe:')) throw new Error('pipe holder: fds 3 and 4 are not pipes');
  const write = fs.openSync(`/proc/${pid}/fd/4`, 'w');
  stdio = [fs.openSync(`/proc/${pid}/fd/3`, 'r'), write, write];
}

function closePipes(): void {
  if (stdio) for (const fd of new Set(stdio)) fs.closeSync(fd);
  stdio = undefined;
  holder?.kill('SIGKILL');
  for (const pid of holderKids) {
    try {
      process.kill(pid, 'SIGKILL'); // the process substitutions' sleep and cat, by pid
    } catch {
      // gone
    }
  }
}

/** The tail of the commands' output log (cat writes it a moment later). */
function logTail(): string {
  spawnSync('sleep', ['0.1']);
  try {
    return fs.readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Run a command on the pipes to its end; milliseconds; throws CommandFailed (with the log's tail) unless exit 0. */
function timed(argv: readonly string[], env: NodeJS.ProcessEnv = benchEnv): number {
  if (!stdio) throw new Error('no pipes');
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, stdio, timeout: 120_000 });
  const ms = performance.now() - t0;
  if (r.error) throw new CommandFailed(`${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new CommandFailed(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${logTail()}`);
  return ms;
}

/** The counter's bundle: runc's default config, the counter as its process, a writable copy of the rootfs. */
function counterBundle(): string {
  const dir = path.join(world.dir, 'bundle-counter');
  fs.mkdirSync(dir);
  const spec = JSON.parse(fs.readFileSync(path.join(world.sleepBundle, 'config.json'), 'utf8')) as { process: { args: string[] }; root: { path: string; readonly?: boolean } };
  spec.process.args = ['sh', '-c', COUNTER];
  spec.root = { path: path.join(dir, 'rootfs'), readonly: false };
  const cp = spawnSync('cp', ['-a', world.rootfs, spec.root.path], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`copying the rootfs: ${cp.stderr}`);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, '\t'));
  return dir;
}

/** Wait until the counter (shared file) has been written since `since`. */
function counting(bundle: string): void {
  const file = path.join(bundle, 'rootfs', 'tmp', 'c');
  const read = () => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const first = read();
  for (let i = 0; i < 200; i++) {
    spawnSync('sleep', ['0.05']);
    if (read() !== first && read() !== '') return;
  }
  throw new Error('the counter did not count');
}

type Side = 'cordon' | 'runc';
const samples: Record<Side, { checkpoint: number[]; restore: number[]; images: number[] }> = {
  cordon: { checkpoint: [], restore: [], images: [] },
  runc: { checkpoint: [], restore: [], images: [] },
};

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

/** One round of one runtime: run -d (not timed), checkpoint, restore -d, delete. Returns checkpoint + restore. */
function round(side: Side, bundle: string, r: number): number {
  const id = world.id(side === 'cordon' ? 'ck' : 'rk');
  const img = path.join(world.dir, `img-${id}`);
  const cmd = side === 'cordon' ? (...a: string[]) => world.cordon(...a) : (...a: string[]) => world.runc(...a);
  const env = side === 'cordon' ? benchEnv : runcEnv;
  try {
    timed(cmd('run', '-d', '-b', bundle, id), env);
    counting(bundle);
    const ck = timed(cmd('checkpoint', '--image-path', img, id), env);
    const bytes = dirBytes(img);
    const rs = side === 'cordon' ? timed(cmd('restore', '-d', '--image-path', img, id), env) : timed(cmd('restore', '-d', '--image-path', img, '-b', bundle, id), env);
    counting(bundle);
    if (r >= 0) {
      samples[side].checkpoint.push(ck);
      samples[side].restore.push(rs);
      samples[side].images.push(bytes);
    }
    return ck + rs;
  } finally {
    spawnSync(cmd('delete', '--force', id)[0], cmd('delete', '--force', id).slice(1), { env, stdio: 'ignore', timeout: 30_000 });
    fs.rmSync(img, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!world.hasRunc) throw new Error('checkpoint bench: runc is not on PATH');
  const rows: string[][] = [];
  let versions: string[] = [];
  const criu = `criu ${spawnSync('criu', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.replace(/^Version: /, '').trim() ?? '?'}`;
  try {
    versions = world.versions().filter((l) => !l.startsWith('crun'));
    await openPipes();
    const bundle = counterBundle();
    const contenders: Contender[] = (['cordon', 'runc'] as Side[]).map((side) => ({ name: side, run: (r: number) => round(side, bundle, r) }));
    const total = await interleave(contenders, { rounds, warmup });
    const med = (xs: number[]) => summarize(xs).median;
    const line = (what: string, c: number[], k: number[], unit = 'ms') => {
      const a = med(c);
      const b = med(k);
      const f = unit === 'ms' ? fmtMs : (x: number) => `${(x / 1024).toFixed(0)} KiB`;
      rows.push([what, f(a), f(b), `${(a / b).toFixed(2)}×`]);
    };
    line('`checkpoint` (no --leave-running)', samples.cordon.checkpoint, samples.runc.checkpoint);
    line('`restore -d`', samples.cordon.restore, samples.runc.restore);
    line('checkpoint + restore (per round)', total.get('cordon') ?? [], total.get('runc') ?? []);
    line('image directory size', samples.cordon.images, samples.runc.images, 'KiB');
  } finally {
    closePipes();
    const problems = world.cleanup();
    if (problems.length) process.stderr.write(`checkpoint: cleanup: ${problems.join('; ')}\n`);
  }
  emitTable(
    'env -u NODE_EXTRA_CA_CERTS node dist/bench/checkpoint.js',
    `${machine()}; ${versions.join('; ')}; ${criu}; rounds ${rounds} (+${warmup} warm-up), interleaved, order alternating.`,
    ['case (busybox counter, pipes for stdio)', 'cordon median', 'runc median', 'cordon / runc'],
    ['---', '---:', '---:', '---:'],
    rows,
  );
}

await main();
