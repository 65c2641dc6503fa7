/**
 * The soak: random verbs from three doors at once — CLI processes, the library (a Cordon in this process)
 * and NATS commands to a `cordon daemon` — on a few dozen containers, while the daemon and nats-server are
 * SIGKILLed and restarted at random moments and the state root's filesystem (a small tmpfs) is filled and
 * freed. Then everything is let to settle and the invariants (test/fixtures/invariants.ts) are checked: no
 * leaked process, cgroup or state dir, every live container listed with the log's state, the freezer
 * agreeing, no intent left over. Bounded in time; deterministic given its seed.
 *
 *   CORDON_SOAK_SECONDS=600 npx vitest run test/soak     # the long form (CI runs a short one)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cordon } from '../../actors/cordon.js';
import { CommandClient } from '../../client/index.js';
import { LifecycleError } from '../../errors/index.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { fillFilesystem } from '../fixtures/disk.js';
import { checkInvariants } from '../fixtures/invariants.js';
import { mulberry32 } from '../fixtures/random.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { type Running, cordon, errorLines, startCordon } from '../cli/helpers.js';

/** What a soak did and found. */
export interface SoakReport {
  seconds: number;
  containers: number;
  /** Verbs issued per door. */
  verbs: { cli: number; library: number; nats: number };
  /** Verbs that succeeded. */
  ok: number;
  /** Failures by code (refusals, EventLogFailed while the disk was full, NATS timeouts while the daemon was down, ...). */
  failures: Record<string, number>;
  /** Up to three messages of each failure code, to read what happened. */
  samples: Record<string, string[]>;
  /** Failures whose code or message says a bug (a TypeError, an unknown code), with their messages. */
  unexpected: string[];
  daemonKills: number;
  natsKills: number;
  diskFills: number;
  /** Invariant violations after settling (must be empty). */
  problems: string[];
}

/** Options of a soak. */
export interface SoakOptions {
  seconds: number;
  containers: number;
  seed?: number;
  /** Concurrent verb loops per door. */
  perDoor?: number;
  log?: (line: string) => void;
}

/** Codes a verb may answer with under this chaos without that being a bug. */
const EXPECTED = new Set([
  'IdInUse', 'ContainerNotExists', 'ContainerPaused', 'ContainerNotPaused', 'ContainerNotRunning', 'ContainerNotStopped', 'ContainerNotCreated',
  'InvalidState', 'EventLogFailed', 'Timeout', 'NoResponders', 'SystemError',
]);

const VERBS = ['create', 'create', 'start', 'start', 'pause', 'resume', 'kill', 'delete', 'exec', 'state'] as const;
type Verb = (typeof VERBS)[number];

/** Run a soak; resolves with its report once everything settled and the invariants were checked. */
export async function soak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  const rand = mulberry32(o.seed ?? 1);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const ids = Array.from({ length: o.containers }, (_, i) => `soak-${i}`);
  const report: SoakReport = { seconds: o.seconds, containers: o.containers, verbs: { cli: 0, library: 0, nats: 0 }, ok: 0, failures: {}, samples: {}, unexpected: [], daemonKills: 0, natsKills: 0, diskFills: 0, problems: [] };
  const root = mkdtempSync('/tmp/cordon-soak-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0711', 'tmpfs', root]);
  const bundle: Bundle = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '100000']) });
  const policyFile = join(mkdtempSync('/tmp/cordon-soak-policy-'), 'policy.json');
  writeFileSync(policyFile, JSON.stringify(soakPolicy(bundle.dir)));
  const nats = await NatsServer.start();
  const host = 'soak';
  let daemon: Running | undefined;
  const daemonLogs: string[] = [];
  const startDaemon = () => {
    daemon = startCordon(root, ['daemon', '--nats', nats.url, '--host', host, ...daemonPolicyArgs(policyFile)], { timeoutMs: 3_600_000 });
    daemonLogs.push(daemon.stderrFile);
    daemon.done.catch(() => {});
  };
  const killDaemon = async () => {
    if (!daemon) return;
    daemon.child.kill('SIGKILL');
    await daemon.done.catch(() => {});
    daemon = undefined;
  };
  let lib: Cordon | undefined;
  const client = await CommandClient.connect({ servers: nats.url, timeoutMs: 5_000 });
  let filler: string | undefined;
  const deadline = Date.now() + o.seconds * 1000;
  const count = (code: string, message: string) => {
    report.failures[code] = (report.failures[code] ?? 0) + 1;
    const sample = (report.samples[code] ??= []);
    if (sample.length < 3) sample.push(message.slice(0, 240));
    if (!EXPECTED.has(code) || /TypeError|ReferenceError|undefined|Cannot read|Unexpected end/.test(message)) report.unexpected.push(`${code}: ${message}`);
  };
  try {
    startDaemon();
    lib = await Cordon.open({ root });
    const cli = async (verb: Verb, id: string) => {
      report.verbs.cli++;
      const args = verb === 'create' ? ['create', '-b', bundle.dir, id] : verb === 'kill' ? ['kill', id, 'KILL'] : verb === 'delete' ? ['delete', '--force', id] : verb === 'exec' ? ['exec', id, 'true'] : [verb, id];
      const r = await cordon(root, args, { timeoutMs: 120_000 });
      if (r.code === 0) return void report.ok++;
      const line = errorLines(r.stderr)[0] ?? '';
      const m = /^cordon: ([A-Za-z]+): (.*)$/s.exec(line);
      count(m?.[1] ?? `exit ${r.code ?? r.signal}`, m?.[2] ?? r.stderr.slice(0, 300));
    };
    const library = async (verb: Verb, id: string) => {
      report.verbs.library++;
      try {
        const c = lib as Cordon;
        if (verb === 'create') await c.create(id, { bundle: bundle.dir });
        else if (verb === 'state') await c.load(id).state();
        else if (verb === 'exec') await (await c.load(id).exec({ args: ['true'] })).exited;
        else if (verb === 'kill') await c.load(id).signal(9);
        else if (verb === 'delete') await c.load(id).destroy({ force: true });
        else await c.load(id)[verb]();
        report.ok++;
      } catch (e) {
        count(e instanceof LifecycleError ? e.code : (e as Error).name, (e as Error).message);
      }
    };
    const viaNats = async (verb: Verb, id: string) => {
      report.verbs.nats++;
      const h = client.host(host);
      try {
        if (verb === 'create') await h.create({ id, bundle: bundle.dir });
        else if (verb === 'kill') await h.kill({ id, signal: 'KILL' });
        else if (verb === 'delete') await h.destroy({ id, force: true });
        else if (verb === 'exec') await h.exec({ id, args: ['true'] });
        else await h[verb]({ id });
        report.ok++;
      } catch (e) {
        count(e instanceof LifecycleError ? e.code : (e as Error).name, (e as Error).message);
        // No daemon right now (killed, starting): do not spin.
        if (e instanceof LifecycleError && e.code === 'NoResponders') await new Promise((r) => setTimeout(r, 100));
      }
    };
    const inFlight = new Map<number, string>();
    let nextVerb = 0;
    const loop = async (name: string, door: (v: Verb, id: string) => Promise<void>) => {
      while (Date.now() < deadline) {
        const v = pick(VERBS);
        const id = pick(ids);
        const n = ++nextVerb;
        inFlight.set(n, `${name} ${v} ${id} since ${new Date().toISOString()}`);
        try {
          await door(v, id);
        } finally {
          inFlight.delete(n);
        }
      }
    };
    // A verb still running long after the deadline is a hang: say which.
    const watchdog = setInterval(() => {
      if (Date.now() > deadline + 20_000) log(`in flight: ${[...inFlight.values()].join('; ')}`);
    }, 10_000);
    watchdog.unref();
    const chaos = async () => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500 + rand() * 2500));
        const what = rand();
        if (what < 0.35) {
          await killDaemon();
          report.daemonKills++;
          log(`chaos: daemon SIGKILLed (${report.daemonKills})`);
          startDaemon();
        } else if (what < 0.6) {
          await nats.kill();
          report.natsKills++;
          log(`chaos: nats-server SIGKILLed (${report.natsKills})`);
          await new Promise((r) => setTimeout(r, 200 + rand() * 800));
          await nats.restart();
        } else if (!filler) {
          filler = fillFilesystem(root);
          report.diskFills++;
          log(`chaos: disk filled (${report.diskFills})`);
          await new Promise((r) => setTimeout(r, 300 + rand() * 1200));
          rmSync(filler, { force: true });
          filler = undefined;
        }
      }
    };
    const n = o.perDoor ?? 2;
    await Promise.all([chaos(), ...Array.from({ length: n }, () => [loop('cli', cli), loop('library', library), loop('nats', viaNats)]).flat()]);
    clearInterval(watchdog);
    // Settle: room on the disk, a daemon that recovers, no verb in flight.
    if (filler) rmSync(filler, { force: true });
    await killDaemon();
    startDaemon();
    report.problems = await checkInvariants(root, ids);
    log(`settled: ${report.problems.length} problem(s)`);
    for (const f of daemonLogs) log(`daemon stderr: ${readFileSync(f, 'utf8').trim().split('\n').slice(-4).join(' | ')}`);
  } finally {
    await client.close().catch(() => {});
    await lib?.close().catch(() => {});
    await killDaemon();
    for (const id of ids) await cordon(root, ['delete', '--force', id]).catch(() => {});
    const leftover = await checkInvariants(root, ids).catch((e: Error) => [e.message]);
    if (leftover.length) report.problems.push(...leftover.map((p) => `after cleanup: ${p}`));
    execFileSync('umount', ['-l', root]);
    rmSync(root, { recursive: true, force: true });
    rmSync(policyFile, { force: true });
    bundle.cleanup();
    await nats.stop();
  }
  return report;
}

/** The daemon's command policy for the soak: its bundle directory allowed, on the test's unauthenticated loopback server. */
function soakPolicy(bundleDir: string): Record<string, unknown> {
  return { trustedNetwork: true, bundleRoots: [bundleDir] };
}

function daemonPolicyArgs(policyFile: string): string[] {
  return ['--policy', policyFile];
}

