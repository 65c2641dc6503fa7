/**
 * The runtimes a harness run compares, on one work directory: cordon (CLI and library), Debian's runc and
 * crun (run in one private mount namespace without /sys/fs/cgroup/unified, which crun refuses in hybrid
 * mode, entered with nsenter), each with its own state root under the work directory, the busybox bundles
 * they share, and a cleanup that removes every container, cgroup and file the run made, even after a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv, runChecked } from './interleave.js';

/** The repository root (dist/bench/ → ../..). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The cordon command's entry. */
export const CORDON_CLI = path.join(REPO, 'bin', 'cordon.js');

/** Which runtime a state root belongs to. */
export type RuntimeName = 'cordon' | 'cordon-lib' | 'cordon-tp' | 'runc' | 'crun';

/** One harness run's world: bundles, state roots, reference runtimes, and its cleanup. */
export class BenchWorld {
  readonly dir: string;
  /** Bundle running /bin/true; and one running `sleep 100000`. */
  readonly trueBundle: string;
  readonly sleepBundle: string;
  readonly roots: Record<RuntimeName, string>;
  /** Every container id this run uses starts with this (cgroups are swept by it). */
  readonly prefix = `cb${process.pid}-`;
  readonly hasRunc: boolean;
  readonly hasCrun: boolean;
  private holder?: ChildProcess;
  private cleaned = false;
  private seq = 0;

  constructor(readonly rootfs: string) {
    if (!fs.existsSync(path.join(rootfs, 'bin', 'sleep'))) throw new Error(`no busybox rootfs at ${rootfs} (run scripts/rootfs.sh)`);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-'));
    this.roots = { cordon: path.join(this.dir, 'root-cordon'), 'cordon-lib': path.join(this.dir, 'root-cordon-lib'), 'cordon-tp': path.join(this.dir, 'root-cordon-tp'), runc: path.join(this.dir, 'root-runc'), crun: path.join(this.dir, 'root-crun') };
    this.hasRunc = has('runc');
    this.hasCrun = has('crun') && has('nsenter') && has('unshare');
    this.trueBundle = this.makeBundle('bundle-true', ['/bin/true']);
    this.sleepBundle = this.makeBundle('bundle-sleep', ['sleep', '100000']);
  }

  /** A fresh container id. */
  id(tag: string): string {
    return `${this.prefix}${tag}-${++this.seq}`;
  }

  /** A bundle with runc's own default config (`runc spec`, terminal off), these args, the rootfs by absolute path. */
  private makeBundle(name: string, args: string[]): string {
    const dir = path.join(this.dir, name);
    fs.mkdirSync(dir);
    if (this.hasRunc) runChecked(['runc', 'spec', '--bundle', dir]);
    else runChecked([process.execPath, CORDON_CLI, 'spec', '-b', dir]);
    const file = path.join(dir, 'config.json');
    const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as { process: { terminal: boolean; args: string[] }; root: { path: string } };
    spec.process.terminal = false;
    spec.process.args = args;
    spec.root.path = rootfs(this.rootfs);
    fs.writeFileSync(file, JSON.stringify(spec, null, '\t'));
    return dir;
  }

  /** argv of the cordon CLI on its root. */
  cordon(...args: string[]): string[] {
    return [process.execPath, CORDON_CLI, '--root', this.roots.cordon, ...args];
  }

  /**
   * The same on the throughput case's own root: every CLI verb reads the whole event journal of its root, so
   * 200 runs there must not make the later CLI cases slower.
   */
  cordonTp(...args: string[]): string[] {
    return [process.execPath, CORDON_CLI, '--root', this.roots['cordon-tp'], ...args];
  }

  /** argv of runc on its root. */
  runc(...args: string[]): string[] {
    return ['runc', '--root', this.roots.runc, ...args];
  }

  /** argv of crun on its root, inside the private mount namespace (started on first use). */
  crun(...args: string[]): string[] {
    return [...this.crunPrefix(), 'crun', '--root', this.roots.crun, ...args];
  }

  /** The nsenter part of every crun command (measured on its own as the wrapper's cost). */
  crunPrefix(): string[] {
    if (!this.holder) throw new Error('crun: call startCrunNamespace() first');
    return ['nsenter', `--mount=/proc/${this.holder.pid}/ns/mnt`];
  }

  /** Start the process that holds crun's mount namespace (private, /sys/fs/cgroup/unified unmounted). */
  async startCrunNamespace(): Promise<void> {
    if (this.holder || !this.hasCrun) return;
    const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep 1000000'], { env: benchEnv, stdio: ['ignore', 'pipe', 'inherit'] });
    this.holder = holder;
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.once('exit', (code) => reject(new Error(`crun namespace holder exited ${code}`)));
      holder.stdout?.once('data', () => resolve());
    });
    holder.removeAllListeners('exit');
  }

  /** Versions of everything measured, one line each. */
  versions(): string[] {
    const first = (argv: string[]) => {
      const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: benchEnv });
      return r.status === 0 ? r.stdout.split('\n')[0].trim() : 'not available';
    };
    const commit = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    const dirty = spawnSync('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim() ? ' (with uncommitted changes)' : '';
    const mtime = (rel: string) => {
      try {
        return fs.statSync(path.join(REPO, 'dist', rel)).mtimeMs;
      } catch {
        return -1;
      }
    };
    const bundled = mtime('cli-bundle/main.cjs') >= 0 && mtime('cli-bundle/main.cjs') >= mtime('cli/main.js');
    return [
      `cordon ${commit || '?'}${dirty}, node ${process.version}; the CLI ran ${bundled ? 'from its bundle (dist/cli-bundle, V8 code cache)' : '**unbundled** (dist/cli-bundle missing or older than dist/cli/main.js: build with `npm run build`, not `tsc` alone)'}`,
      `runc: ${this.hasRunc ? first(['runc', '--version']).replace(/^runc version /, '') : 'not installed'}`,
      `crun: ${this.hasCrun ? first(['crun', '--version']).replace(/^crun version /, '') : 'not installed'}`,
    ];
  }

  /** Remove every container of this run (all runtimes), its cgroups, the namespace holder and the work directory. */
  cleanup(): string[] {
    if (this.cleaned) return [];
    this.cleaned = true;
    const problems: string[] = [];
    const quiet = (argv: string[]) => spawnSync(argv[0], argv.slice(1), { env: benchEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    for (const id of listIds(this.roots.cordon)) quiet(this.cordon('delete', '--force', id));
    for (const root of [this.roots['cordon-lib'], this.roots['cordon-tp']]) for (const id of listIds(root)) quiet([process.execPath, CORDON_CLI, '--root', root, 'delete', '--force', id]);
    if (this.hasRunc && fs.existsSync(this.roots.runc)) for (const id of quiet(this.runc('list', '-q')).stdout.split('\n').filter(Boolean)) quiet(this.runc('delete', '--force', id));
    if (this.holder && fs.existsSync(this.roots.crun)) for (const id of quiet(this.crun('list', '-q')).stdout.split('\n').filter(Boolean)) quiet(this.crun('delete', '--force', id));
    if (this.holder) {
      this.holder.kill('SIGKILL');
      this.holder = undefined;
    }
    problems.push(...sweepCgroups(this.prefix));
    fs.rmSync(this.dir, { recursive: true, force: true });
    return problems;
  }
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function rootfs(p: string): string {
  return fs.realpathSync(p);
}

/** Container ids under a cordon state root (its directories). */
function listIds(root: string): string[] {
  try {
    return fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Kill what is left in, and remove, every cgroup directory (up to two levels deep) named with this prefix. */
export function sweepCgroups(prefix: string, base = '/sys/fs/cgroup'): string[] {
  const left: string[] = [];
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.startsWith(prefix)) found.push(p);
      else if (depth < 2) walk(p, depth + 1);
    }
  };
  walk(base, 0);
  for (const dir of found.sort((a, b) => b.length - a.length)) {
    try {
      for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone
        }
      }
      fs.writeFileSync(path.join(dir, 'freezer.state'), 'THAWED');
    } catch {
      // not a freezer, or gone
    }
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(dir);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        if (i === 49) left.push(`${dir}: ${(e as Error).message}`);
        else spawnSync('sleep', ['0.02']);
      }
    }
  }
  return left;
}

/** A short description of the machine: kernel, CPU model and count, memory, load. */
export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? '?';
  return `Linux ${os.release()} ${os.arch()}, ${os.availableParallelism()} CPUs (${cpu.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
}
