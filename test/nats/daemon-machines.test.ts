/**
 * A running `cordon daemon` holds a machine for every container of its host, whichever door moves it: one
 * the CLI creates next to it (through its control socket: the daemon's own machine builds it) and one a
 * foreground `cordon run` makes itself (adopted from its `create` fact). The daemon's machine snapshots,
 * published on `cordon.<host>.inspect.<id>` with --inspect, show every transition the CLI processes caused,
 * in order, with what the facts carried (the exit as the parent saw it).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../events/nats-connection.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { type Running, cordon, freshRoot, removeIoDir, startCordon, waitFor } from '../cli/helpers.js';

interface Seen {
  state: string;
  context: { exit?: { exitCode: number | null; signal: number | null; unknown: boolean }; pid?: number };
}

let srv: NatsServer;
let nc: NatsConnection;
let daemon: Running;
const bundles: Bundle[] = [];
const host = `dm${randomUUID().slice(0, 6)}`;
const root = freshRoot('cordon-daemon-machines');
const seen = new Map<string, Seen[]>();

beforeAll(async () => {
  srv = await NatsServer.start({ jetstream: true });
  nc = await connectNats({ servers: srv.url });
  nc.subscribe(`cordon.${host}.inspect.>`, {
    callback: (_e, m) => {
      const s = m.json<{ containerId: string; state: unknown; context: Seen['context'] }>();
      const list = seen.get(s.containerId) ?? [];
      list.push({ state: String(s.state), context: s.context });
      seen.set(s.containerId, list);
    },
  });
  await nc.flush();
  daemon = startCordon(root, ['daemon', '--nats', srv.url, '--host', host, '--inspect'], { timeoutMs: 120_000 });
  await waitFor('the daemon up', () => /events to JetStream/.test(readFileSync(daemon.stderrFile, 'utf8')), 20_000);
});

afterAll(async () => {
  daemon?.child.kill('SIGTERM');
  await daemon?.done.catch(() => {});
  await destroyAll(root);
  await nc?.close();
  await srv?.stop();
  for (const b of bundles) b.cleanup();
  removeIoDir();
});

/** The states the daemon's machine went through, consecutive repeats folded. */
const states = (id: string) => (seen.get(id) ?? []).map((s) => s.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);

describe('the daemon holds the machine of every container, whichever door moves it', () => {
  it('created through its control socket, then started, paused, resumed, killed and deleted by CLI processes: every transition, the exit as its parent saw it', async () => {
    const b = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
    bundles.push(b);
    for (const args of [['create', '-b', b.dir, 'sock-1'], ['start', 'sock-1'], ['pause', 'sock-1'], ['resume', 'sock-1'], ['kill', 'sock-1', 'KILL']]) {
      const r = await cordon(root, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
    await waitFor('the daemon to see the exit', () => states('sock-1').includes('stopped'), 10_000);
    const d = await cordon(root, ['delete', 'sock-1']);
    expect(d.code, d.stderr).toBe(0);
    await waitFor('the daemon to see the destroy', () => states('sock-1').at(-1) === 'destroyed', 10_000);
    expect(states('sock-1')).toEqual(['creating', 'created', 'running', 'paused', 'running', 'stopped', 'destroyed']);
    // The daemon made it (through its control socket), so it is the parent: the exit's signal is known.
    const stopped = (seen.get('sock-1') ?? []).find((s) => s.state === 'stopped');
    expect(stopped?.context.exit).toMatchObject({ exitCode: null, signal: 9, unknown: false });
  });

  it('made by a foreground `cordon run` itself: adopted from its create fact, then every transition, the exit code its parent recorded', async () => {
    const b = makeBundle({ spec: (s) => void (s.process.args = ['sh', '-c', 'exit 5']) });
    bundles.push(b);
    const r = await cordon(root, ['run', '-b', b.dir, 'fg-1']);
    expect(r.code, r.stderr).toBe(5);
    await waitFor('the daemon to see the destroy', () => states('fg-1').at(-1) === 'destroyed', 10_000);
    expect(states('fg-1')).toEqual(['created', 'running', 'stopped', 'destroyed']);
    const stopped = (seen.get('fg-1') ?? []).find((s) => s.state === 'stopped');
    expect(stopped?.context.exit).toMatchObject({ exitCode: 5, signal: null, unknown: false });
  });
});
