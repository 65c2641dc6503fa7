/**
 * The cgroup verbs of the CLI, with runc's flags: pause, resume, ps, events, update.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { ContainerHost } from '../actors/container-host.js';
import { containerPids, containerStats, watchContainerOom } from '../actors/queries.js';
import { jsonWithBigints, runcStats } from '../actors/runc-events.js';
import { StateRoot } from '../actors/state-dir.js';
import type { CgroupResources } from '../kernel/index.js';
import { type FlagSpec, UsageError, bool, parseArgs, str } from './args.js';

const UPDATE_FLAGS: FlagSpec[] = [
  { name: 'resources', short: ['r'] },
  { name: 'blkio-weight' },
  { name: 'cpu-period' },
  { name: 'cpu-quota' },
  { name: 'cpu-share' },
  { name: 'cpu-rt-period' },
  { name: 'cpu-rt-runtime' },
  { name: 'cpuset-cpus' },
  { name: 'cpuset-mems' },
  { name: 'kernel-memory' },
  { name: 'kernel-memory-tcp' },
  { name: 'memory' },
  { name: 'memory-reservation' },
  { name: 'memory-swap' },
  { name: 'pids-limit' },
  { name: 'l3-cache-schema' },
  { name: 'mem-bw-schema' },
];

/** Bytes from "512m", "1g", "1024", "-1" (docker's RAMInBytes units, binary multiples). */
export function parseBytes(flag: string, v: string): bigint {
  const m = /^(-?\d+)([kmgtp]?)b?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${flag}: invalid size ${JSON.stringify(v)}`);
  const mult = { '': 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n }[m[2].toLowerCase() as '' | 'k'];
  return BigInt(m[1]) * mult;
}

function int(flag: string, v: string): bigint {
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${flag}: invalid number ${JSON.stringify(v)}`);
  return BigInt(v);
}

/** The resources an `update` command line asks for. */
export async function updateResources(argv: readonly string[]): Promise<{ id: string; resources: CgroupResources }> {
  const p = parseArgs(argv, UPDATE_FLAGS);
  if (p.args.length !== 1) throw new UsageError('update: expected exactly one container ID');
  let r: CgroupResources = {};
  const file = str(p, 'resources');
  if (file !== undefined) {
    const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    // The config validation modules, only when a resources file is given.
    const { Issues, convertResources } = await import('../config/index.js');
    const issues = new Issues();
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--resources: invalid JSON: ${(e as Error).message}`);
    }
    r = convertResources(issues, raw, 'resources') ?? {};
    issues.throwIfAny();
  }
  const f = (n: string) => str(p, n);
  const memory: NonNullable<CgroupResources['memory']> = { ...r.memory };
  if (f('memory')) memory.limit = parseBytes('memory', f('memory') as string);
  if (f('memory-reservation')) memory.reservation = parseBytes('memory-reservation', f('memory-reservation') as string);
  if (f('memory-swap')) memory.swap = parseBytes('memory-swap', f('memory-swap') as string);
  if (f('kernel-memory')) memory.kernel = parseBytes('kernel-memory', f('kernel-memory') as string);
  if (f('kernel-memory-tcp')) memory.kernelTCP = parseBytes('kernel-memory-tcp', f('kernel-memory-tcp') as string);
  if (Object.keys(memory).length) r.memory = memory;
  const cpu: NonNullable<CgroupResources['cpu']> = { ...r.cpu };
  if (f('cpu-period')) cpu.period = int('cpu-period', f('cpu-period') as string);
  if (f('cpu-quota')) cpu.quota = int('cpu-quota', f('cpu-quota') as string);
  if (f('cpu-share')) cpu.shares = int('cpu-share', f('cpu-share') as string);
  if (f('cpu-rt-period')) cpu.realtimePeriod = int('cpu-rt-period', f('cpu-rt-period') as string);
  if (f('cpu-rt-runtime')) cpu.realtimeRuntime = int('cpu-rt-runtime', f('cpu-rt-runtime') as string);
  if (f('cpuset-cpus')) cpu.cpus = f('cpuset-cpus');
  if (f('cpuset-mems')) cpu.mems = f('cpuset-mems');
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (f('pids-limit')) r.pids = { limit: int('pids-limit', f('pids-limit') as string) };
  if (f('blkio-weight')) r.blockIO = { ...r.blockIO, weight: Number(int('blkio-weight', f('blkio-weight') as string)) };
  if (f('l3-cache-schema') || f('mem-bw-schema')) throw new UsageError('update: Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported');
  return { id: p.args[0], resources: r };
}

/** Run `f` with the root's containers as actors (cli/main.ts opens and closes them). */
export type WithHost = <T>(root: string, f: (h: ContainerHost) => Promise<T>) => Promise<T>;

/**
 * Run a cgroup verb; returns the exit code, or undefined when `verb` is not one. pause, resume and update
 * go through the container's machine; ps and events read the cgroups.
 */
export async function cgroupVerb(verb: string, argv: readonly string[], root: string, withHost: WithHost): Promise<number | undefined> {
  const state = new StateRoot(root);
  switch (verb) {
    case 'pause':
    case 'resume': {
      const p = parseArgs(argv, []);
      if (p.args.length !== 1) throw new UsageError(`${verb}: expected exactly one container ID`);
      await withHost(root, (h) => (verb === 'pause' ? h.pause(p.args[0]) : h.resume(p.args[0])));
      return 0;
    }
    case 'ps': {
      const p = parseArgs(argv, [{ name: 'format', short: ['f'] }]);
      if (p.args.length < 1) throw new UsageError('ps: expected a container ID');
      const pids = containerPids(state, p.args[0]);
      const format = str(p, 'format') ?? 'table';
      if (format === 'json') {
        process.stdout.write(JSON.stringify(pids) + '\n');
        return 0;
      }
      if (format !== 'table') throw new UsageError(`invalid format option: ${format}`);
      // As runc: run the host's ps with the given options (default -ef) and keep the container's lines.
      const psArgs = p.args.length > 1 ? p.args.slice(1) : ['-ef'];
      const res = spawnSync('ps', psArgs, { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`ps ${psArgs.join(' ')}: ${res.stderr || `exit ${res.status}`}`);
      const lines = res.stdout.split('\n');
      const header = lines[0];
      const pidCol = header.trim().split(/\s+/).indexOf('PID');
      if (pidCol < 0) throw new Error(`ps: no PID column in ${JSON.stringify(header)}`);
      const set = new Set(pids);
      process.stdout.write(header + '\n');
      for (const l of lines.slice(1)) if (l.trim() && set.has(Number(l.trim().split(/\s+/)[pidCol]))) process.stdout.write(l + '\n');
      return 0;
    }
    case 'events': {
      const p = parseArgs(argv, [{ name: 'stats', bool: true }, { name: 'interval' }]);
      if (p.args.length !== 1) throw new UsageError('events: expected exactly one container ID');
      const id = p.args[0];
      const sample = () => {
        const s = containerStats(state, id);
        process.stdout.write(jsonWithBigints({ type: 'stats', id, data: runcStats(s.cgroup, s.interfaces) }) + '\n');
      };
      if (bool(p, 'stats')) {
        sample();
        return 0;
      }
      const interval = parseDuration(str(p, 'interval') ?? '5s');
      await new Promise<void>((resolve) => {
        const stop = watchContainerOom(state, id, () => process.stdout.write(JSON.stringify({ type: 'oom', id }) + '\n'));
        const timer = setInterval(() => {
          try {
            sample();
          } catch {
            clearInterval(timer);
            stop();
            resolve();
          }
        }, interval);
        sample();
      });
      return 0;
    }
    case 'update': {
      const { id, resources } = await updateResources(argv);
      await withHost(root, (h) => h.update(id, { resources }));
      return 0;
    }
    default:
      return undefined;
  }
}

/** Go-style durations: "5s", "100ms", "1m". */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (!m) throw new UsageError(`invalid duration ${JSON.stringify(v)}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
}
