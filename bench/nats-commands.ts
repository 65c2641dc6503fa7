/**
 * Commands over NATS, measured against the same operations through the Supervisor in-process: request round
 * trips (list, state, a refused bad request, $SRV.PING), a container lifecycle (create, start, kill + stopped,
 * destroy) per step, and the remote CLI (`cordon --host H --nats URL list`) against the local `cordon list`.
 * Starts its own nats-server (Debian's, /usr/sbin/nats-server) on a free loopback port; prints a table.
 *
 * Usage (as root, after a build): node dist/bench/nats-commands.js [--round-trips N] [--cycles C] [--cli K] [--rootfs DIR]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveCommands } from '../actors/command-service.js';
import { ContainerHost } from '../actors/container-host.js';
import { ociStateOf } from '../actors/queries.js';
import { Supervisor } from '../actors/supervisor.js';
import { defaultSpecJson } from '../cli/spec.js';
import { CordonClient } from '../client/cordon-client.js';
import { connectNats } from '../events/nats-connection.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const arg = (n: string, d: number) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
const ms = (x: number) => x.toFixed(2);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function timeEach(n: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f(i);
    out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<void> {
  const roundTrips = arg('round-trips', 1000);
  const cycles = arg('cycles', 20);
  const cliRuns = arg('cli', 10);
  const rootfsIdx = argv.indexOf('--rootfs');
  const rootfs = fs.realpathSync(path.resolve(rootfsIdx >= 0 ? argv[rootfsIdx + 1] : path.join(repo, '.cache/rootfs/busybox')));
  const port = await freePort();
  const server = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `nats://127.0.0.1:${port}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-nats-'));
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-nats-bundle-'));
  const spec = JSON.parse(defaultSpecJson()) as { process: { args: string[] }; root: { path: string } };
  spec.process.args = ['sleep', '100000'];
  spec.root.path = rootfs;
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  await new Promise((r) => setTimeout(r, 300));
  const hostNc = await connectNats({ servers: url });
  const sup = await Supervisor.start({ root, host: 'bench' });
  // A local server without authentication (a trusted network); the bundle and the repo's rootfs are the bundle roots.
  const svc = serveCommands(sup, hostNc, { host: 'bench', bundleRoot: `${root}-bundles`, trustedNetwork: true, policy: { bundleRoots: [fs.realpathSync(bundle), rootfs] } });
  const client = await CordonClient.connect({ servers: url, timeoutMs: 30_000 });
  const h = client.host('bench');
  const nul = fs.openSync('/dev/null', 'r+');
  const rows: string[][] = [];
  const row = (what: string, xs: number[], note = '') => rows.push([what, String(xs.length), ms(pct(xs, 0.5)), ms(pct(xs, 0.99)), note]);
  try {
    await h.list({});
    row('list round trip (NATS)', await timeEach(roundTrips, () => h.list({})));
    await h.create({ id: 'rt', bundle });
    row('state round trip (NATS)', await timeEach(roundTrips, () => h.state({ id: 'rt' })));
    row('state in-process (stateOf + OCI state)', await timeEach(roundTrips, async () => [sup.stateOf('rt'), ociStateOf(sup.containers.state, 'rt')]));
    row('bad request refused (NATS)', await timeEach(roundTrips, () => h.start({ id: 'rt', bogus: 1 } as never).catch(() => {})));
    row('$SRV.PING.cordon round trip', await timeEach(roundTrips, () => client.nc.request('$SRV.PING.cordon', '', { timeout: 5000 })));
    await h.destroy({ id: 'rt', force: true });

    for (const via of ['NATS', 'in-process'] as const) {
      const steps: Record<string, number[]> = { create: [], start: [], 'kill+stopped': [], destroy: [] };
      for (let i = 0; i < cycles; i++) {
        const id = `cy-${via === 'NATS' ? 'n' : 'l'}-${i}`;
        const t = async (k: string, f: () => Promise<unknown>) => {
          const t0 = performance.now();
          await f();
          steps[k].push(performance.now() - t0);
        };
        if (via === 'NATS') {
          await t('create', () => h.create({ id, bundle }));
          await t('start', () => h.start({ id }));
          await t('kill+stopped', async () => {
            await h.kill({ id, signal: 9 });
            await sup.waitFor(id, ['stopped'], 10_000);
          });
          await t('destroy', () => h.destroy({ id }));
        } else {
          await t('create', () => sup.create(id, { bundle, stdio: [nul, nul, nul] }));
          await t('start', () => sup.start(id));
          await t('kill+stopped', async () => {
            await sup.kill(id, 9);
            await sup.waitFor(id, ['stopped'], 10_000);
          });
          await t('destroy', () => sup.destroy(id));
        }
      }
      for (const [k, xs] of Object.entries(steps)) row(`${k} (${via})`, xs);
    }

    // Asynchronous: the supervisor in this process must keep answering while the CLI runs.
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const cli = (args: string[]) =>
      new Promise<void>((resolve, reject) => {
        const c = spawn('node', [path.join(repo, 'bin/cordon.js'), ...args], { stdio: 'ignore', env });
        c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cordon ${args.join(' ')}: exit ${code}`))));
      });
    row('cordon --host H --nats URL list (process)', await timeEach(cliRuns, () => cli(['--host', 'bench', '--nats', url, 'list'])));
    row('cordon --root R list (local, process)', await timeEach(cliRuns, () => cli(['--root', root, 'list'])), 'no NATS');
  } finally {
    await client.close();
    await svc.stop();
    await sup.stop();
    await hostNc.close();
    const h = await ContainerHost.open({ root });
    for (const id of h.state.list()) await h.destroy(id, { force: true }).catch(() => {});
    await h.close();
    server.kill();
    fs.closeSync(nul);
    for (const d of [root, `${root}-bundles`, bundle]) fs.rmSync(d, { recursive: true, force: true });
  }
  const widths = [44, 6, 10, 10, 10];
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
  console.log(line(['operation', 'n', 'p50 ms', 'p99 ms', '']));
  for (const r of rows) console.log(line(r));
}

await main();
