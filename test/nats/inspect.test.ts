/**
 * Inspection: with `inspect` on, every container machine's snapshots reach the Stately inspector (through
 * @statelyai/inspect's own inspector server and WebSocket receiver) and NATS subscribers of
 * `cordon.<host>.inspect.<containerId>`; a supervisor process with inspection on (its inspector unreachable)
 * still exits within a second of being asked to stop. The child process runs from dist/: build first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInspection, type InspectedSnapshot } from '../../actors/inspection.js';
import { destroyAll } from '../fixtures/containers.js';
import { connectNats } from '../../events/nats-connection.js';
import { type Bundle, REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { NatsServer, freePort } from '../fixtures/nats-server.js';
import { type TestHost, startHost } from './hosts.js';
import { until } from '../fixtures/wait.js';

let srv: NatsServer;
let nc: NatsConnection;
const bundles: Bundle[] = [];
const roots: string[] = [];

beforeAll(async () => {
  srv = await NatsServer.start({ jetstream: false });
  nc = await connectNats({ servers: srv.url });
});

afterAll(async () => {
  await nc?.close();
  await srv?.stop();
  for (const r of roots) {
    await destroyAll(r);
    rmSync(r, { recursive: true, force: true });
    rmSync(`${r}-bundles`, { recursive: true, force: true });
  }
  for (const b of bundles) b.cleanup();
});

function bundle(args: string[]): Bundle {
  const b = makeBundle({ spec: (s) => void (s.process.args = args) });
  bundles.push(b);
  return b;
}

/** Collect the snapshots published on cordon.<host>.inspect.> */
function snapshots(host: string): { got: InspectedSnapshot[]; stop(): void } {
  const got: InspectedSnapshot[] = [];
  const sub = nc.subscribe(`cordon.${host}.inspect.>`, { callback: (_e, m) => got.push(m.json<InspectedSnapshot>()) });
  return { got, stop: () => sub.unsubscribe() };
}

describe('inspection', () => {
  it('snapshots go to the Stately inspector server and to cordon.<host>.inspect.<containerId>', async () => {
    const port = await freePort();
    const server = createInspectorServer({ port, autoOpen: false });
    const stately: StatelyInspectionEvent[] = [];
    await new Promise((r) => setTimeout(r, 200));
    const receiver = createWebSocketReceiver({ server: `ws://127.0.0.1:${port}` });
    receiver.subscribe((e) => stately.push(e));
    const insp = startInspection({ host: 'insp-a', nc, url: `ws://127.0.0.1:${port}` });
    const seen = snapshots('insp-a');
    let h: TestHost | undefined;
    try {
      h = await startHost(nc, 'insp-a', { inspect: insp.inspect });
      roots.push(h.root);
      const b = bundle(['sleep', '600']);
      await h.sup.create('watched', { bundle: b.dir });
      await h.sup.start('watched');
      await h.sup.kill('watched', 9);
      await h.sup.waitFor('watched', ['stopped'], 10_000);
      await until(() => (seen.got.some((s) => s.state === 'stopped') ? true : undefined), 5000, 'the stopped snapshot on NATS');
      const states = seen.got.filter((s) => s.containerId === 'watched').map((s) => s.state);
      expect(states).toEqual(expect.arrayContaining(['created', 'running', 'stopped']));
      expect(states.indexOf('running')).toBeLessThan(states.indexOf('stopped'));
      expect(seen.got[0]).toMatchObject({ host: 'insp-a', containerId: 'watched', context: { id: 'watched' } });
      const snaps = await until(() => {
        const s = stately.filter((e) => e.type === '@xstate.snapshot' && (e.snapshot as { context?: { id?: string } }).context?.id === 'watched');
        return s.some((e) => (e.snapshot as { value?: string }).value === 'stopped') ? s : undefined;
      }, 5000, 'the stopped snapshot at the Stately inspector');
      expect(snaps.length).toBeGreaterThanOrEqual(2);
      expect(stately.some((e) => e.type === '@xstate.actor')).toBe(true);
    } finally {
      seen.stop();
      insp.stop();
      await h?.cleanup();
      server.stop();
    }
  });

  it('startNatsSupervisor refuses a host id that is not one subject token before connecting', async () => {
    const { startNatsSupervisor } = await import('../../actors/nats-supervisor.js');
    await expect(startNatsSupervisor({ root: '/tmp/never-made', host: 'node.example.com' }, { nats: { servers: srv.url } })).rejects.toMatchObject({ name: 'CommandServiceError', field: 'host' });
  });

  it('a supervisor process with its NATS services and inspection on (inspector unreachable) answers commands and exits within a second of SIGTERM', async () => {
    const root = mkdtempSync('/tmp/cordon-nats-inspect-child-');
    roots.push(root);
    const b = bundle(['sleep', '600']);
    const deadPort = await freePort();
    const seen = snapshots('insp-b');
    const child: ChildProcess = spawn('node', [`${REPO_ROOT}/test/fixtures/inspect-child.mjs`, srv.url, root, 'insp-b', `ws://127.0.0.1:${deadPort}`, b.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await until(() => (out.includes('ready') ? true : undefined), 20_000, `the child to be ready (${out})`);
      await until(() => (seen.got.some((s) => s.containerId === 'inspected' && s.state === 'running') ? true : undefined), 5000, 'the running snapshot');
      const state = (await nc.request('cordon.insp-b.cmd.state', JSON.stringify({ id: 'inspected' }), { timeout: 5000 })).json<{ state: string }>();
      expect(state.state).toBe('running');
      // Let the inspector's socket fail and schedule its reconnect at least once.
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      child.kill('SIGTERM');
      const code = await exited;
      const ms = Date.now() - t0;
      console.log(`inspect: supervisor with inspection exited ${ms} ms after SIGTERM`);
      expect(code).toBe(0);
      expect(out).toContain('stopped');
      expect(ms).toBeLessThan(1000);
    } finally {
      seen.stop();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
