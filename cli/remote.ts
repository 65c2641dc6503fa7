/**
 * `cordon --host H --nats URL <verb> ...`: the CLI's verbs sent to host H's supervisor over NATS (the command
 * service) instead of run here. Same verbs and flags as the local CLI where they make sense remotely; paths
 * (bundles) are paths on that host. Authentication and TLS come from CORDON_NATS_* (events/nats-connection.ts);
 * --nats (or CORDON_NATS_URL) says where NATS is. Errors print as `cordon: <Code>: <host> <verb>: <message>`, the remote code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommandClient, CordonCommandError, type HostCommands } from '../client/command-client.js';
import type { CommandRequests } from '../events/command-api.js';
import { type NatsOptions, natsOptionsFromEnv } from '../events/nats-connection.js';
import { type FlagSpec, type ParsedArgs, UsageError, bool, parseArgs, str } from './args.js';

const UPDATE_FLAGS: Array<[string, keyof CommandRequests['update'], 'size' | 'int' | 'string']> = [
  ['memory', 'memory', 'size'],
  ['memory-reservation', 'memoryReservation', 'size'],
  ['memory-swap', 'memorySwap', 'size'],
  ['cpu-share', 'cpuShares', 'int'],
  ['cpu-quota', 'cpuQuota', 'int'],
  ['cpu-period', 'cpuPeriod', 'int'],
  ['cpuset-cpus', 'cpusetCpus', 'string'],
  ['cpuset-mems', 'cpusetMems', 'string'],
  ['pids-limit', 'pidsLimit', 'int'],
  ['blkio-weight', 'blkioWeight', 'int'],
];

const EXEC_FLAGS: FlagSpec[] = [
  { name: 'process', short: ['p'] }, { name: 'detach', short: ['d'], bool: true }, { name: 'env', short: ['e'], multi: true }, { name: 'cwd' },
  { name: 'user', short: ['u'] }, { name: 'additional-gids', short: ['g'], multi: true }, { name: 'cap', short: ['c'], multi: true }, { name: 'no-new-privs', bool: true },
];

function oneId(p: ParsedArgs, verb: string): string {
  if (p.args.length !== 1) throw new UsageError(`${verb}: expected exactly one container ID, got ${p.args.length}`);
  return p.args[0];
}

const multi = (p: ParsedArgs, n: string): string[] => (Array.isArray(p.flags[n]) ? (p.flags[n] as string[]) : []);
const out = (x: unknown) => process.stdout.write(JSON.stringify(x, null, 2) + '\n');

/** The NATS options for a remote verb: CORDON_NATS_* with --nats overriding the URL. */
export function remoteNatsOptions(natsUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): NatsOptions {
  const base = natsOptionsFromEnv(natsUrl ? { ...env, CORDON_NATS_URL: natsUrl } : env);
  if (!base) throw new UsageError('--host needs NATS: give --nats URL or set CORDON_NATS_URL');
  return { ...base, name: 'cordon-cli', reconnectForever: false };
}

/** Run `verb` on `host` through NATS; resolves to the exit code. */
export async function runRemote(host: string, natsUrl: string | undefined, verb: string, rest: string[]): Promise<number> {
  const token = process.env.CORDON_COMMAND_TOKEN;
  const client = await CommandClient.connect({ ...remoteNatsOptions(natsUrl), timeoutMs: Number(process.env.CORDON_NATS_TIMEOUT_MS) || 30_000, ...(token ? { commandToken: token } : {}) });
  try {
    return await remoteVerb(client.host(host), verb, rest);
  } finally {
    await client.close();
  }
}

async function remoteVerb(h: HostCommands, verb: string, rest: string[]): Promise<number> {
  switch (verb) {
    case 'create':
    case 'run': {
      const p = parseArgs(rest, [{ name: 'bundle', short: ['b'] }, { name: 'no-pivot', bool: true }, { name: 'detach', short: ['d'], bool: true }]);
      const id = oneId(p, verb);
      if (verb === 'run' && !bool(p, 'detach')) throw new UsageError('run: only detached (-d) over NATS: the container runs on its host');
      await h.create({ id, bundle: path.resolve(str(p, 'bundle') ?? '.'), ...(bool(p, 'no-pivot') ? { noPivot: true } : {}) });
      if (verb === 'run') await h.start({ id });
      return 0;
    }
    case 'start':
    case 'pause':
    case 'resume':
      await h[verb]({ id: oneId(parseArgs(rest, []), verb) });
      return 0;
    case 'state':
      out((await h.state({ id: oneId(parseArgs(rest, []), verb) })).oci);
      return 0;
    case 'kill': {
      const p = parseArgs(rest, [{ name: 'all', short: ['a'], bool: true }]);
      if (p.args.length < 1 || p.args.length > 2) throw new UsageError('kill: expected ID [SIGNAL]');
      const sig = p.args[1] === undefined ? undefined : /^\d+$/.test(p.args[1]) ? Number(p.args[1]) : p.args[1];
      await h.kill({ id: p.args[0], ...(sig !== undefined ? { signal: sig } : {}), ...(bool(p, 'all') ? { all: true } : {}) });
      return 0;
    }
    case 'delete': {
      const p = parseArgs(rest, [{ name: 'force', short: ['f'], bool: true }]);
      await h.destroy({ id: oneId(p, verb), ...(bool(p, 'force') ? { force: true } : {}) });
      return 0;
    }
    case 'list': {
      const p = parseArgs(rest, [{ name: 'format', short: ['f'] }, { name: 'quiet', short: ['q'], bool: true }]);
      const { containers } = await h.list({});
      const format = str(p, 'format') ?? 'table';
      if (bool(p, 'quiet')) for (const c of containers) process.stdout.write(`${c.id}\n`);
      else if (format === 'json') process.stdout.write(JSON.stringify(containers) + '\n');
      else if (format === 'table') {
        const rows = [['ID', 'PID', 'STATE', 'BUNDLE', 'CREATED'], ...containers.map((c) => [c.id, String(c.pid), c.state, c.bundle, c.created])];
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i] + 3))).join('') + '\n');
      } else throw new UsageError(`invalid format option: ${format}`);
      return 0;
    }
    case 'exec': {
      const p = parseArgs(rest, EXEC_FLAGS);
      const [id, ...args] = p.args;
      if (!id) throw new UsageError('exec: expected a container ID and a command');
      const u = str(p, 'user');
      const um = u === undefined ? undefined : /^(\d+)(?::(\d+))?$/.exec(u);
      if (u !== undefined && !um) throw new UsageError(`exec: --user: expected uid[:gid], got ${JSON.stringify(u)}`);
      const file = str(p, 'process');
      const r = await h.exec({
        id,
        ...(args.length ? { args } : {}),
        ...(multi(p, 'env').length ? { env: multi(p, 'env') } : {}),
        ...(str(p, 'cwd') ? { cwd: str(p, 'cwd') } : {}),
        ...(um ? { user: { uid: Number(um[1]), ...(um[2] !== undefined ? { gid: Number(um[2]) } : {}) } } : {}),
        ...(multi(p, 'additional-gids').length ? { additionalGids: multi(p, 'additional-gids').map(Number) } : {}),
        ...(multi(p, 'cap').length ? { caps: multi(p, 'cap') } : {}),
        ...(bool(p, 'no-new-privs') ? { noNewPrivileges: true } : {}),
        ...(file !== undefined ? { process: JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8')) as Record<string, unknown> } : {}),
        ...(bool(p, 'detach') ? { detach: true } : { output: true }),
      });
      if (r.stdout) process.stdout.write(r.stdout);
      if (r.stderr) process.stderr.write(r.stderr);
      if (r.truncated) process.stderr.write('cordon: warning: output truncated at 256 KiB per stream\n');
      if (r.exitCode === undefined) return 0;
      return r.exitCode ?? 128 + (r.signal ?? 0);
    }
    case 'events': {
      const p = parseArgs(rest, [{ name: 'stats', bool: true }]);
      if (!bool(p, 'stats')) throw new UsageError('events: only --stats ID over NATS (lifecycle events: read CORDON_EVENTS)');
      const id = oneId(p, verb);
      process.stdout.write(JSON.stringify({ type: 'stats', id, data: (await h.stats({ id })).data }) + '\n');
      return 0;
    }
    case 'update': {
      const p = parseArgs(rest, [{ name: 'resources', short: ['r'] }, ...UPDATE_FLAGS.map(([f]) => ({ name: f }))]);
      const req: CommandRequests['update'] = { id: oneId(p, verb) };
      const file = str(p, 'resources');
      if (file !== undefined) req.resources = JSON.parse(fs.readFileSync(file === '-' ? 0 : file, 'utf8')) as Record<string, unknown>;
      for (const [flag, field, kind] of UPDATE_FLAGS) {
        const v = str(p, flag);
        if (v === undefined) continue;
        if (kind !== 'string' && kind !== 'size' && !/^-?\d+$/.test(v)) throw new UsageError(`--${flag}: invalid number ${JSON.stringify(v)}`);
        (req as Record<string, unknown>)[field] = kind === 'int' ? Number(v) : v;
      }
      await h.update(req);
      return 0;
    }
    case 'checkpoint':
    case 'restore': {
      const p = parseArgs(rest, [{ name: 'image-path' }, { name: 'work-path' }, { name: 'leave-running', bool: true }, { name: 'tcp-established', bool: true }, { name: 'file-locks', bool: true }, { name: 'bundle', short: ['b'] }]);
      const id = oneId(p, verb);
      const img = str(p, 'image-path') === undefined ? undefined : path.resolve(str(p, 'image-path') as string);
      if (verb === 'checkpoint') await h.checkpoint({ id, ...(img ? { imagePath: img } : {}), ...(bool(p, 'leave-running') ? { leaveRunning: true } : {}) });
      else await h.restore({ id, imagePath: img ?? path.resolve('checkpoint') });
      return 0;
    }
    default:
      throw new UsageError(`${verb}: not available over NATS (remote verbs: create, run -d, start, state, kill, delete, pause, resume, list, exec, events --stats, update, checkpoint, restore)`);
  }
}
