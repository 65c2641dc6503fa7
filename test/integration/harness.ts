/**
 * Shared helpers of the integration tests: a private state root per test file, containers run through the
 * library (ContainerHost, the lifecycle path every door takes) with their stdout/stderr captured in temp files, and readers for what a container
 * prints (/proc/self/status, /proc/self/mountinfo) and for what the host sees afterwards.
 *
 *   const h = new Harness('process');
 *   afterAll(() => h.cleanup());
 *   const r = await h.run((s) => { s.process.args = ['sh', '-c', 'id -u']; });
 *   expect(r.out).toBe('0\n');
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerHost } from '../../actors/container-host.js';
import { StateRoot } from '../../actors/state-dir.js';
import { containerStats, listStates, ociStateOf } from '../../actors/queries.js';
import type { CreateRequest } from '../../actors/verbs/create.js';
import type { ExitStatus } from '../../kernel/index.js';
import type { NetworkConfig } from '../../config/network.js';
import { type Bundle, type OciSpecLike, type SpecMutator, makeBundle } from '../fixtures/bundle.js';

export { type Bundle, type OciSpecLike, makeBundle };

/** What a foreground run left behind: exit status, captured output and the container's host pid. */
export interface RunResult {
  status: ExitStatus | null;
  /** Everything the container wrote to stdout (and stderr unless `separateStderr`). */
  out: string;
  /** Stderr, when `separateStderr` was set. */
  err: string;
  /** Host pid of the container's init (from the pid file). */
  pid: number;
  id: string;
  bundle: Bundle;
}

export interface RunOptions {
  /** Rootfs to copy into the bundle (makeUsernsRootfs(uid)). */
  rootfs?: string;
  noPivot?: boolean;
  /** Text fed to the container's stdin (default: /dev/null). */
  stdin?: string;
  /** Capture stderr in its own file instead of interleaved with stdout. */
  separateStderr?: boolean;
  /** Keep the bundle after the run (the caller cleans it up). */
  keepBundle?: boolean;
  /** The container's network (CreateOptions.network). */
  network?: NetworkConfig;
}

/** A private state root and the bundles and temp files of one test file. */
export class Harness {
  readonly root: string;
  private host?: ContainerHost;
  private readonly scratch: string;
  private readonly bundles: Bundle[] = [];
  private seq = 0;

  constructor(readonly name: string) {
    this.root = mkdtempSync(`/tmp/cordon-it-${name}-root-`);
    this.scratch = mkdtempSync(`/tmp/cordon-it-${name}-io-`);
  }

  /** The root's state dirs. */
  get state(): StateRoot {
    return new StateRoot(this.root);
  }

  /** runc's verbs on this root through ContainerHost (the lifecycle path every door takes), as the tests use them. */
  readonly rt = {
    create: async (id: string, req: CreateRequest) => (await this.containers()).create(id, req),
    start: async (id: string) => (await this.containers()).start(id),
    kill: async (id: string, signal = 15) => (await this.containers()).kill(id, signal),
    delete: async (id: string, opts: { force?: boolean } = {}) => (await this.containers()).destroy(id, opts),
    /** Foreground: create, start, wait, delete, the exit status; detached: create and start. */
    run: async (id: string, req: CreateRequest & { detach?: boolean }): Promise<ExitStatus | null> => {
      const h = await this.containers();
      if (!req.detach) return h.run(id, req);
      await h.create(id, req);
      await h.start(id);
      return null;
    },
    stateOf: (id: string) => ociStateOf(this.state, id),
    list: () => listStates(this.state),
    state: { dir: (id: string) => this.state.dir(id), fifo: (id: string) => this.state.fifo(id) },
    cgroups: { stats: (id: string) => containerStats(this.state, id) },
  };

  /** The root's containers as actors (opened on first use; the CLI opens its own per verb). */
  async containers(): Promise<ContainerHost> {
    return (this.host ??= await ContainerHost.open({ root: this.root, watch: 'own' }));
  }

  /** A fresh container id. */
  nextId(): string {
    return `${this.name}-${process.pid}-${++this.seq}`;
  }

  /** A bundle that is removed by cleanup(). */
  bundle(spec?: SpecMutator, rootfs?: string): Bundle {
    const b = makeBundle({ spec, rootfs });
    this.bundles.push(b);
    return b;
  }

  /** A temp file path under this harness's scratch dir. */
  file(name: string): string {
    return join(this.scratch, `${++this.seq}-${name}`);
  }

  /** Run a container in the foreground through ContainerHost.run and capture its output. */
  async run(spec: SpecMutator | Bundle, opts: RunOptions = {}): Promise<RunResult> {
    const bundle = isBundle(spec) ? spec : this.bundle(spec, opts.rootfs);
    const id = this.nextId();
    const outPath = this.file('out');
    const errPath = this.file('err');
    const inPath = this.file('in');
    const pidFile = this.file('pid');
    writeFileSync(inPath, opts.stdin ?? '');
    const outFd = openSync(outPath, 'w');
    const errFd = opts.separateStderr ? openSync(errPath, 'w') : outFd;
    const inFd = opts.stdin === undefined ? openSync('/dev/null', 'r') : openSync(inPath, 'r');
    let status: ExitStatus | null;
    try {
      status = await (await this.containers()).run(id, { bundle: bundle.dir, stdio: [inFd, outFd, errFd], pidFile, noPivot: opts.noPivot, network: opts.network });
    } finally {
      closeSync(inFd);
      closeSync(outFd);
      if (errFd !== outFd) closeSync(errFd);
    }
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const out = readFileSync(outPath, 'utf8');
    const err = opts.separateStderr ? readFileSync(errPath, 'utf8') : '';
    return { status, out, err, pid, id, bundle };
  }

  /** Run and require exit code 0; returns stdout. */
  async output(spec: SpecMutator, opts: RunOptions = {}): Promise<string> {
    const r = await this.run(spec, opts);
    if (r.status?.code !== 0) throw new Error(`container exited with ${JSON.stringify(r.status)}; output:\n${r.out}${r.err}`);
    return r.out;
  }

  /** Force-delete containers a failed test left behind, remove bundles, scratch files and the state root. */
  async cleanup(): Promise<void> {
    for (const id of safeList(this.root)) {
      try {
        await (await this.containers()).destroy(id, { force: true });
      } catch {
        // best effort
      }
    }
    await this.host?.close();
    for (const b of this.bundles) b.cleanup();
    rmSync(this.scratch, { recursive: true, force: true });
    rmSync(this.root, { recursive: true, force: true });
  }
}

function safeList(root: string): string[] {
  try {
    return existsSync(root) ? new StateRoot(root).list() : [];
  } catch {
    return [];
  }
}

function isBundle(x: unknown): x is Bundle {
  return typeof x === 'object' && x !== null && 'dir' in x && 'rootfs' in x && 'cleanup' in x;
}

/** `sh -c SCRIPT` as process.args. */
export function sh(script: string): SpecMutator {
  return (s) => {
    s.process.args = ['sh', '-c', script];
  };
}

/** Compose spec mutators (functions only). */
export function specs(...ms: Array<(s: OciSpecLike) => void>): (s: OciSpecLike) => void {
  return (s) => ms.forEach((m) => m(s));
}

/** Split an output made of sections started by lines "== NAME ==" into a map NAME → text. */
export function sections(out: string): Record<string, string> {
  const res: Record<string, string> = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^== (.+) ==$/.exec(line);
    if (m) {
      cur = m[1];
      res[cur] = '';
    } else if (cur) {
      res[cur] += line + '\n';
    }
  }
  for (const k of Object.keys(res)) res[k] = res[k].replace(/\n+$/, '');
  return res;
}

/** One /proc/PID/mountinfo line, parsed. */
export interface MountLine {
  id: number;
  parent: number;
  majMin: string;
  root: string;
  mountPoint: string;
  options: string[];
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.split(' ');
      const sep = f.indexOf('-');
      return {
        id: Number(f[0]),
        parent: Number(f[1]),
        majMin: f[2],
        root: unescape(f[3]),
        mountPoint: unescape(f[4]),
        options: f[5].split(','),
        optional: f.slice(6, sep),
        fsType: f[sep + 1],
        source: unescape(f[sep + 2]),
        superOptions: (f[sep + 3] ?? '').split(','),
      };
    });
}

/** The mount at `point` (the last one listed, i.e. the top of a stack). */
export function mountAt(mounts: MountLine[], point: string): MountLine | undefined {
  return mounts.filter((m) => m.mountPoint === point).at(-1);
}

/** Fields of /proc/PID/status as a map ("CapEff" → "0000000020000420"). */
export function parseStatus(text: string): Record<string, string> {
  const res: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) res[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return res;
}

/** Host mount points at or below `dir` (in the test process's mount namespace). */
export function hostMountsUnder(dir: string): string[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(dir + '/'));
}

/** The namespace a host process is in ("net:[4026531840]"). */
export function hostNs(pid: number | 'self', name: string): string {
  return readlinkSync(`/proc/${pid}/ns/${name}`);
}

/** Capability numbers (the ones the tests use). */
export const CAP: Record<string, number> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_FOWNER: 3,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_RAW: 13,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_MKNOD: 27,
  CAP_AUDIT_WRITE: 29,
};

/** The /proc/PID/status hex form of a capability set. */
export function capHex(names: readonly string[]): string {
  let v = 0n;
  for (const n of names) {
    const c = CAP[n];
    if (c === undefined) throw new Error(`capHex: unknown capability ${n}`);
    v |= 1n << BigInt(c);
  }
  return v.toString(16).padStart(16, '0');
}

/** True while a process with this pid exists (zombie or not). */
export function pidExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Wait until `pred` holds (polling), up to `ms`. */
export async function waitFor(pred: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}
