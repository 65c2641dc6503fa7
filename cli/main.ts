/**
 * The `cordon` command: runc's verbs and flags (create, start, state, kill, delete, run, list, spec) on
 * a state root (--root, default /run/cordon). Verbs that change a container go through its machine (a
 * ContainerHost rebuilds it from the host's log) like every other door's. Errors go to stderr as
 * `cordon: <Code>: message`, exit code 1; `run` in the foreground exits with the container's code
 * (128+N when killed by signal N).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerHost } from '../actors/container-host.js';
import { toLifecycleError } from '../actors/errors.js';
import { type ListedState, listStates, ociStateOf } from '../actors/queries.js';
import { StateRoot } from '../actors/state-dir.js';
import { isDamagedState } from '../actors/state-file.js';
import { exitCodeOf, parseSignal, windowSize } from '../kernel/index.js';
import { type FlagSpec, type ParsedArgs, UsageError, bool, parseArgs, str } from './args.js';
import { defaultSpecJson } from './spec.js';
import { cgroupVerb } from './cgroup-verbs.js';
import { criuVerb } from './criu-verbs.js';
import { LIFECYCLE_EVENT_FLAGS } from './event-flags.js';
import { type DaemonCreated, createThroughDaemon } from '../actors/daemon-client.js';
import type { NetworkConfig } from '../config/network.js';

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root' },
  { name: 'log' },
  { name: 'log-format' },
  { name: 'debug', bool: true },
  { name: 'systemd-cgroup', bool: true },
  { name: 'rootless' },
  { name: 'criu' },
  { name: 'host' },
  { name: 'nats' },
  { name: 'help', short: ['h'], bool: true },
  { name: 'version', short: ['v'], bool: true },
];

const CREATE_FLAGS: FlagSpec[] = [
  { name: 'bundle', short: ['b'] },
  { name: 'pid-file' },
  { name: 'console-socket' },
  { name: 'no-pivot', bool: true },
  { name: 'no-new-keyring', bool: true },
  { name: 'preserve-fds' },
  { name: 'network' },
];

const USAGE = `cordon — an OCI container runtime

usage: cordon [--root DIR] COMMAND [flags] ARGS

commands:
  create [-b DIR] [--pid-file F] [--no-pivot] [--network FILE] ID   create a container, parked before its process runs
  start ID                                           run the process of a created container
  run [-b DIR] [-d] [--pid-file F] [--no-pivot] [--network FILE] [--preserve-fds N] ID
                                                     create and start; foreground: wait, delete, exit with its code
  state ID                                           print the OCI state JSON
  kill [-a|--all] ID [SIGNAL]                        send a signal (name or number, default SIGTERM); --all: every process
  exec [-e K=V] [--cwd D] [-u UID[:GID]] [--cap C] [--no-new-privs] [-p FILE] [-d] [--pid-file F]
       [-t [--console-socket S]] [--preserve-fds N] ID CMD [ARGS]
                                                     run another process in a running container; exits with its code
  pause ID / resume ID                               freeze / thaw every process of the container
  ps [-f json] ID [PS-OPTIONS]                       processes of the container (host ps lines, or a JSON pid list)
  events [--stats] [--interval D] ID                 runc's stats/oom JSON lines (--stats: one sample)
  update [--memory M] [--cpu-quota N] ... [-r FILE|-] ID   change resources of a running container
  delete [-f|--force] ID                             delete a container (force: kill it first)
  checkpoint [--image-path D] [--work-path D] [--leave-running] [--tcp-established] [--ext-unix-sk] [--shell-job]
       [--file-locks] [--manage-cgroups-mode M] [--empty-ns network] [--auto-dedup] ID
                                                     dump it with CRIU (default images: ./checkpoint); it is gone unless --leave-running
  restore [-b DIR] [--image-path D] [--work-path D] [-d] [--pid-file F] [CRIU flags as checkpoint] ID
                                                     bring a checkpointed container (or, with -b, a new one) back from its images;
                                                     foreground: wait, delete, exit with its code
  list [-q] [--format table|json]                    list containers
  events [--filter container=ID|action=A]... [--format json] [--since T] [--until T] [--since-seq N] [--no-follow]
                                                     the host's lifecycle events (follows live ones until interrupted)
  daemon [--nats URL] [--host ID] [--inspect [--inspect-url WS]] [--policy FILE] [--trusted-network]
                                                     supervise the host's containers: re-adopt, watch exits and OOM, record events
                                                     (--nats or CORDON_NATS_URL: also to JetStream, restoring an empty root from it,
                                                     and serves commands under the command policy FILE; --trusted-network: serve
                                                     them on a NATS connection without authentication)
  spec [-b DIR] [--seccomp]                          write a default config.json (--seccomp: with the default profile)
  journal check [--root DIR] [--format json]         verify the event journal (CRC, seq, schema); exit 1 when damaged
  journal repair [--root DIR]                        quarantine damaged records, cut a torn tail, rewrite the snapshot

global flags:
  --root DIR   state directory (default /run/cordon)
  --host H [--nats URL]   run the verb on host H's supervisor over NATS (URL or CORDON_NATS_URL; auth from CORDON_NATS_*)

environment:
  CORDON_CONTROL_TIMEOUT_MS   how long create / run -d wait for a running daemon's answer (default 30000)
  CORDON_CRASH_AT=STEP[,...]  for tests: SIGKILL this process at a named step (README, "Crash consistency")
  CORDON_FAIL_AT=STEP[,...]   for tests: fail with an injected EIO at a named step
`;

/** Run the CLI with argv (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  quietOnClosedPipe();
  try {
    return await dispatch(argv);
  } catch (e) {
    const le = toLifecycleError(e);
    process.stderr.write(`cordon: ${le.code}: ${errorText(le)}\n`);
    return 1;
  }
}

/** Exit status of a tool whose output pipe was closed (a shell's 128 + SIGPIPE). */
export const EXIT_CLOSED_PIPE = 141;

/**
 * `cordon list | head -1`: a write to a closed pipe (EPIPE on stdout or stderr) ends the process at once and
 * quietly, exit status 141, as a tool killed by SIGPIPE (Node ignores SIGPIPE, so the write fails instead and,
 * unhandled, would print a stack trace).
 */
function quietOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT_CLOSED_PIPE);
      throw e;
    });
  }
}

function errorText(e: Error): string {
  // A damaged state.json: the verb and container it stopped (`state web: /run/cordon/web/state.json is damaged: ...`).
  if (isDamagedState(e)) return `${currentVerb ?? 'read'} ${e.id}: ${e.message}`;
  const issues = (e as { issues?: Array<{ path: string; message: string }> }).issues;
  if (Array.isArray(issues) && issues.length > 1) return `${e.message.split('\n')[0]}\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`;
  return e.message;
}

async function dispatch(argv: readonly string[]): Promise<number> {
  const g = parseArgs(argv, GLOBAL_FLAGS);
  if (bool(g, 'version')) {
    process.stdout.write('cordon version 0.1.0\nspec: 1.2.0\n');
    return 0;
  }
  const [verb, ...rest] = g.args;
  if (!verb || bool(g, 'help') || verb === 'help') {
    process.stdout.write(USAGE);
    return verb || bool(g, 'help') ? 0 : 1;
  }
  const root = str(g, 'root') ?? '/run/cordon';
  if ((str(g, 'host') !== undefined || str(g, 'nats') !== undefined) && verb !== 'daemon') {
    const host = str(g, 'host');
    if (host === undefined) throw new UsageError('--nats needs --host H: the host whose supervisor runs the verb');
    return (await import('./remote.js')).runRemote(host, str(g, 'nats'), verb, rest);
  }
  if (verb === 'events') {
    // runc's form names a container (stats/oom lines); without one it is the host's lifecycle event stream.
    const p = parseArgs(rest, [...LIFECYCLE_EVENT_FLAGS, { name: 'stats', bool: true }, { name: 'interval' }]);
    // Loaded on demand: rxjs and xstate cost a fresh CLI process ~200 ms that the other verbs need not pay.
    if (p.args.length === 0) return (await import('./lifecycle-events.js')).streamEvents(root, p);
  }
  if (verb === 'journal') return (await import('./journal-verbs.js')).journalVerb(rest, root);
  if (verb === 'daemon') return (await import('./daemon.js')).runDaemon(root, await daemonNats(rest));
  return runVerb(verb, rest, root);
}

/** Run `f` with the root's containers as actors (the host's log opened), closed afterwards: containers live on. */
async function withHost<T>(root: string, f: (h: ContainerHost) => Promise<T>): Promise<T> {
  // Loaded on demand (xstate, the journal): `state`, `list` and `ps` only read the state dirs.
  const { ContainerHost } = await import('../actors/container-host.js');
  const h = await ContainerHost.open({ root, watch: 'own', onWarning: warn, onError: (e) => warn(e.message) });
  try {
    return await f(h);
  } finally {
    await h.close();
  }
}

/**
 * Before `state` and `list` answer from the state dirs: a verb a dead process left midway (its intent in a
 * free lock file) is finished or undone first, so they never show a half-made container. Costs one readdir
 * when there is none.
 */
async function recoverAbandoned(root: string): Promise<void> {
  const { ContainerLocks } = await import('../actors/container-lock.js');
  if (new ContainerLocks(path.resolve(root)).abandoned().length === 0) return;
  // A read-only verb still answers when the recovery cannot be done now (a full disk): it says so.
  await withHost(root, (h) => h.recoverAbandoned()).catch((e: Error) => warn(`verbs left midway were not finished yet: ${e.message}`));
}

/** `daemon [--nats URL] [--host ID]`: NATS from the flag or CORDON_NATS_URL (credentials from CORDON_NATS_*). */
async function daemonNats(rest: string[]): Promise<import('./daemon.js').DaemonNats> {
  const p = parseArgs(rest, [{ name: 'nats' }, { name: 'host' }, { name: 'inspect', bool: true }, { name: 'inspect-url' }, { name: 'policy' }, { name: 'trusted-network', bool: true }]);
  const { natsOptionsFromEnv } = await import('../events/nats-connection.js');
  const url = str(p, 'nats');
  const env = natsOptionsFromEnv(url ? { ...process.env, CORDON_NATS_URL: url } : process.env);
  const policyFile = str(p, 'policy');
  const trustedNetwork = bool(p, 'trusted-network');
  // They govern the commands served over NATS: without NATS they would be accepted and ignored.
  if (!env && policyFile !== undefined) throw new UsageError('--policy needs --nats (or CORDON_NATS_URL): the policy governs commands over NATS');
  if (!env && trustedNetwork) throw new UsageError('--trusted-network needs --nats (or CORDON_NATS_URL)');
  return { nats: env, host: str(p, 'host'), inspect: bool(p, 'inspect') || str(p, 'inspect-url') !== undefined, inspectUrl: str(p, 'inspect-url'), policyFile, trustedNetwork };
}

/** The verb being run, for naming the operation in an error that does not carry it. */
let currentVerb: string | undefined;

async function runVerb(verb: string, rest: string[], root: string): Promise<number> {
  currentVerb = verb;
  const viaCgroups = await cgroupVerb(verb, rest, root, withHost);
  if (viaCgroups !== undefined) return viaCgroups;
  const viaCriu = await criuVerb(verb, rest, root, withHost);
  if (viaCriu !== undefined) return viaCriu;
  switch (verb) {
    case 'create': {
      const p = parseArgs(rest, CREATE_FLAGS);
      const id = oneId(p, 'create');
      const req = { id, bundle: str(p, 'bundle') ?? process.cwd(), pidFile: pidFileFlag(p), noPivot: bool(p, 'no-pivot'), consoleSocket: str(p, 'console-socket'), network: networkFlag(p), extraFiles: preservedFds(p) };
      // Next to a running daemon, the daemon creates it (with our stdio) and stays its parent.
      if (daemonCreated(await createThroughDaemon(root, req, warn))) return 0;
      await withHost(root, (h) => h.create(id, req));
      return 0;
    }
    case 'start':
      await withHost(root, (h) => h.start(oneId(parseArgs(rest, []), 'start')));
      return 0;
    case 'run': {
      const p = parseArgs(rest, [...CREATE_FLAGS, { name: 'detach', short: ['d'], bool: true }, { name: 'keep', bool: true }]);
      const id = oneId(p, 'run');
      const detach = bool(p, 'detach');
      const req = { bundle: str(p, 'bundle') ?? process.cwd(), pidFile: pidFileFlag(p), noPivot: bool(p, 'no-pivot'), consoleSocket: str(p, 'console-socket'), network: networkFlag(p), extraFiles: preservedFds(p) };
      if (detach && daemonCreated(await createThroughDaemon(root, { id, ...req }, warn))) {
        await withHost(root, (h) => h.start(id));
        return 0;
      }
      return withHost(root, (h) => runContainer(h, id, { ...req, keepTerminal: !detach && !req.consoleSocket }, detach));
    }
    case 'exec':
      return withHost(root, (h) => execVerb(h, rest));
    case 'state':
      await recoverAbandoned(root);
      process.stdout.write(JSON.stringify(ociStateOf(new StateRoot(root), oneId(parseArgs(rest, []), 'state')), null, 2) + '\n');
      return 0;
    case 'kill': {
      const p = parseArgs(rest, [{ name: 'all', short: ['a'], bool: true }]);
      if (p.args.length < 1 || p.args.length > 2) throw new UsageError('kill: expected ID [SIGNAL]');
      const sig = p.args[1] === undefined ? 15 : parseSignal(p.args[1]);
      if (sig === undefined) throw new UsageError(`unknown signal ${JSON.stringify(p.args[1])}`);
      await withHost(root, (h) => h.kill(p.args[0], sig, { all: bool(p, 'all') }));
      return 0;
    }
    case 'delete': {
      const p = parseArgs(rest, [{ name: 'force', short: ['f'], bool: true }]);
      const id = oneId(p, 'delete');
      await withHost(root, (h) => h.destroy(id, { force: bool(p, 'force') }));
      return 0;
    }
    case 'list':
    case 'ps-list': {
      const p = parseArgs(rest, [{ name: 'format', short: ['f'] }, { name: 'quiet', short: ['q'], bool: true }]);
      await recoverAbandoned(root);
      // A damaged state.json is listed with status "unknown" and named on stderr (as runc's state says: `load container ID: ...`).
      const states = listStates(new StateRoot(root), (e) => warn(`load container ${e.id}: ${e.message}`));
      printList(states, str(p, 'format') ?? 'table', bool(p, 'quiet'));
      return 0;
    }
    case 'spec': {
      const p = parseArgs(rest, [{ name: 'bundle', short: ['b'] }, { name: 'rootless', bool: true }, { name: 'seccomp', bool: true }]);
      const file = path.join(str(p, 'bundle') ?? '.', 'config.json');
      if (fs.existsSync(file)) throw new Error(`File ${file} exists. Remove it first`);
      fs.writeFileSync(file, defaultSpecJson({ seccomp: bool(p, 'seccomp') }));
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(verb)}; see cordon --help`);
  }
}

/**
 * create + start in this process. Detached: return once it runs. In the foreground: the signals this process
 * gets go to the container, a terminal is wired, and the container is deleted after its exit, whose
 * shell-style code is returned.
 */
async function runContainer(h: ContainerHost, id: string, req: Parameters<ContainerHost['create']>[1], detach: boolean): Promise<number> {
  if (detach) {
    await h.create(id, req);
    try {
      await h.start(id);
    } catch (e) {
      await h.destroy(id, { force: true }).catch(() => {});
      throw e;
    }
    return 0;
  }
  const { attachTerminal, forwardSignals } = await import('../actors/foreground.js');
  const status = await h.run(id, req, (c) => {
    const unforward = forwardSignals(c.init);
    const untty = c.ptyMaster === undefined ? () => {} : attachTerminal(c.ptyMaster);
    return () => {
      untty();
      unforward();
    };
  });
  return exitCodeOf(status);
}

const EXEC_FLAGS: FlagSpec[] = [
  { name: 'process', short: ['p'] }, { name: 'tty', short: ['t'], bool: true }, { name: 'detach', short: ['d'], bool: true },
  { name: 'pid-file' }, { name: 'env', short: ['e'], multi: true }, { name: 'cwd' }, { name: 'user', short: ['u'] },
  { name: 'additional-gids', short: ['g'], multi: true }, { name: 'cap', short: ['c'], multi: true }, { name: 'no-new-privs', bool: true },
  { name: 'preserve-fds' }, { name: 'console-socket' }, { name: 'process-label' }, { name: 'apparmor' }, { name: 'cgroup' },
];

/** exec: another process in a running container, through its machine; in the foreground, its exit code. */
async function execVerb(h: ContainerHost, rest: string[]): Promise<number> {
  const p = parseArgs(rest, EXEC_FLAGS);
  const [id, ...cmd] = p.args;
  if (!id) throw new UsageError('exec: expected a container ID and a command');
  const file = str(p, 'process');
  const processJson: unknown = file === undefined ? undefined : JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8'));
  // -p with "terminal": true asks for a tty as -t does.
  const tty = bool(p, 'tty') || (processJson as { terminal?: unknown } | undefined)?.terminal === true;
  const consoleSocket = str(p, 'console-socket');
  if (tty && bool(p, 'detach') && !consoleSocket) throw new UsageError('exec: cannot allocate tty if cordon will detach without setting console socket');
  if (!tty && consoleSocket) throw new UsageError('exec: cannot use console socket if cordon will not allocate tty');
  const multi = (n: string) => (Array.isArray(p.flags[n]) ? (p.flags[n] as string[]) : []);
  const u = str(p, 'user');
  const um = u === undefined ? undefined : /^(\d+)(?::(\d+))?$/.exec(u);
  if (u !== undefined && !um) throw new UsageError(`exec: --user: expected uid[:gid], got ${JSON.stringify(u)}`);
  const proc = await h.exec(id, {
    request: {
      args: cmd,
      env: multi('env'),
      cwd: str(p, 'cwd'),
      user: um ? { uid: Number(um[1]), gid: um[2] === undefined ? undefined : Number(um[2]) } : undefined,
      additionalGids: multi('additional-gids').length ? multi('additional-gids').map(Number) : undefined,
      caps: multi('cap'),
      noNewPrivileges: bool(p, 'no-new-privs'),
      process: processJson,
      tty,
      consoleSize: tty && !consoleSocket ? ttySize() : undefined,
    },
    io: { extraFiles: preservedFds(p), consoleSocket },
  });
  if (str(p, 'pid-file')) fs.writeFileSync(str(p, 'pid-file') as string, String(proc.pid));
  if (bool(p, 'detach')) {
    proc.detach();
    return 0;
  }
  // A terminal in the foreground: the caller's tty wired to the pty, signals forwarded, as `run` does.
  const { attachTerminal, forwardSignals } = await import('../actors/foreground.js');
  const untty = proc.ptyMaster === undefined ? () => {} : attachTerminal(proc.ptyMaster);
  const unforward = forwardSignals(proc);
  try {
    const st = await proc.exited;
    return st.signal !== null ? 128 + st.signal : (st.exitCode ?? 255);
  } finally {
    untty();
    unforward();
  }
}

function pidFileFlag(p: ParsedArgs): string | undefined {
  const f = str(p, 'pid-file');
  return f === undefined ? undefined : path.resolve(f);
}

/** --preserve-fds N: this process's fds 3..3+N-1, each checked open. */
function preservedFds(p: ParsedArgs): number[] | undefined {
  const v = str(p, 'preserve-fds');
  if (v === undefined || v === '0') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--preserve-fds: expected a number, got ${JSON.stringify(v)}`);
  const fds = Array.from({ length: Number(v) }, (_, i) => 3 + i);
  for (const fd of fds) {
    try {
      fs.fstatSync(fd);
    } catch {
      throw new UsageError(`--preserve-fds ${v}: fd ${fd} is not open`);
    }
  }
  return fds;
}

function ttySize(): { height: number; width: number } | undefined {
  const ws = windowSize(1);
  return ws ? { height: ws.rows, width: ws.cols } : undefined;
}

/** --network FILE: the network config as JSON (see config/network.ts), "-" for stdin. */
function networkFlag(p: ParsedArgs): NetworkConfig | undefined {
  const file = str(p, 'network');
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`--network: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as NetworkConfig;
  } catch (e) {
    throw new UsageError(`--network: ${file} is not JSON: ${(e as Error).message}`);
  }
}

/** Whether the daemon created it; when it died before answering and the container is there anyway, say so. */
function daemonCreated(r: DaemonCreated | undefined): boolean {
  if (r?.recovered) warn(r.recovered);
  return r !== undefined;
}

function warn(message: string): void {
  process.stderr.write(`cordon: warning: ${message}\n`);
}

function oneId(p: ParsedArgs, verb: string): string {
  if (p.args.length !== 1) throw new UsageError(`${verb}: expected exactly one container ID, got ${p.args.length}`);
  return p.args[0];
}

function printList(states: ListedState[], format: string, quiet: boolean): void {
  if (quiet) {
    for (const s of states) process.stdout.write(`${s.id}\n`);
    return;
  }
  if (format === 'json') {
    process.stdout.write(JSON.stringify(states) + '\n');
    return;
  }
  if (format !== 'table') throw new UsageError(`invalid format option: ${format}`);
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created, s.owner || 'root'])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) process.stdout.write(r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c] + 3))).join('') + '\n');
}
