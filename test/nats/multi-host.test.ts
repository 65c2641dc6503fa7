/**
 * Several hosts on one NATS system: a three-node nats-server cluster, two supervisors in this process with
 * different host ids and state roots, each connected to its own node, each answering only its own subjects (the same container id on both is two
 * containers); hosts() finds both; and `cordon --host H --nats URL <verb>` drives either from the CLI.
 * The CLI runs from dist/: run `npx tsc -p tsconfig.json` first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CordonClient, CordonCommandError } from '../../client/cordon-client.js';
import { connectNats } from '../../events/nats-connection.js';
import { CLI, exec, removeIoDir } from '../cli/helpers.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { NatsCluster } from '../fixtures/nats-server.js';
import { type TestHost, startHost } from './hosts.js';

let cluster: NatsCluster;
const conns: NatsConnection[] = [];
let a: TestHost;
let b: TestHost;
let client: CordonClient;
const bundles: Bundle[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  // Each party on its own node: requests and $SRV pings cross the cluster's routes.
  for (let i = 0; i < 3; i++) conns.push(await connectNats({ servers: cluster.urls[i] }));
  // Two hosts on one kernel name their containers' cgroups apart (cgroupsPath): the callers' grant allows it.
  const svc = { trustedNetwork: true, policy: { bundleRoots: ['/tmp'], anonymous: 'mh', grants: { mh: { verbs: ['*'], bypass: ['cgroupsPath'] } } } };
  a = await startHost(conns[0], 'mh-a', {}, svc);
  b = await startHost(conns[1], 'mh-b', {}, svc);
  client = new CordonClient(conns[2], { timeoutMs: 20_000 });
  // Subscription interest reaches the other nodes over the routes shortly after the subscribe.
  for (const c of conns) await c.flush();
  for (let i = 0; i < 50 && (await client.hosts({ waitMs: 100 })).length < 2; i++);
});

afterAll(async () => {
  await a?.cleanup();
  await b?.cleanup();
  for (const c of conns) await c.close();
  await cluster?.stop();
  for (const x of bundles) x.cleanup();
  removeIoDir();
});

/** A bundle; `cgroup` names its cgroups (two hosts on one kernel share cgroup names: the default is the container id). */
function bundle(args: string[], cgroup?: string): Bundle {
  const x = makeBundle({
    spec: (s) => {
      s.process.args = args;
      if (cgroup) s.linux = { ...s.linux, cgroupsPath: `/${cgroup}` };
    },
  });
  bundles.push(x);
  return x;
}

function cordonRemote(host: string | undefined, args: string[]) {
  return exec('node', [CLI, ...(host ? ['--host', host] : []), '--nats', cluster.urls[2], ...args], { timeoutMs: 30_000 });
}

describe('two supervisors, one NATS cluster', () => {
  it('hosts() finds both supervisors', async () => {
    expect((await client.hosts({ waitMs: 300 })).map((h) => h.host)).toEqual(['mh-a', 'mh-b']);
  });

  it('the same id on both hosts is two containers; each host answers only for its own', async () => {
    const x = bundle(['sleep', '600'], 'mh-a-job');
    const y = bundle(['sleep', '600'], 'mh-b-job');
    const ca = await client.host('mh-a').create({ id: 'job', bundle: x.dir });
    const cb = await client.host('mh-b').create({ id: 'job', bundle: y.dir });
    expect(ca.pid).not.toBe(cb.pid);
    expect(existsSync(join(a.root, 'job'))).toBe(true);
    expect(existsSync(join(b.root, 'job'))).toBe(true);
    await client.host('mh-a').start({ id: 'job' });
    expect((await client.host('mh-a').state({ id: 'job' })).state).toBe('running');
    expect((await client.host('mh-b').state({ id: 'job' })).state).toBe('created');
    await client.host('mh-b').create({ id: 'only-b', bundle: bundle(['sleep', '600']).dir });
    expect((await client.host('mh-a').list({})).containers.map((c) => c.id)).toEqual(['job']);
    expect((await client.host('mh-b').list({})).containers.map((c) => c.id)).toEqual(['job', 'only-b']);
    const e = await client.host('mh-a').state({ id: 'only-b' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(CordonCommandError);
    expect((e as CordonCommandError).code).toBe('ContainerNotExists');
    await client.host('mh-a').kill({ id: 'job', signal: 9 });
    await a.sup.waitFor('job', ['stopped'], 10_000);
    expect(b.sup.stateOf('job')).toBe('created');
    await client.host('mh-a').destroy({ id: 'job' });
    await client.host('mh-b').destroy({ id: 'job', force: true });
    await client.host('mh-b').destroy({ id: 'only-b', force: true });
    expect(a.sup.ids()).toEqual([]);
    expect(b.sup.ids()).toEqual([]);
  });
});

describe('cordon --host H --nats URL <verb>', () => {
  it('create, start, list, state, exec (exit code), kill, delete on the chosen host only', async () => {
    const x = bundle(['sleep', '600']);
    expect((await cordonRemote('mh-b', ['create', '-b', x.dir, 'cli-1'])).code).toBe(0);
    expect(b.sup.stateOf('cli-1')).toBe('created');
    expect(a.sup.ids()).toEqual([]);
    expect((await cordonRemote('mh-b', ['start', 'cli-1'])).code).toBe(0);
    const list = await cordonRemote('mh-b', ['list', '--format', 'json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject([{ id: 'cli-1', state: 'running' }]);
    expect((await cordonRemote('mh-a', ['list', '-q'])).stdout).toBe('');
    const st = await cordonRemote('mh-b', ['state', 'cli-1']);
    expect(JSON.parse(st.stdout)).toMatchObject({ id: 'cli-1', status: 'running' });
    const ex = await cordonRemote('mh-b', ['exec', 'cli-1', 'sh', '-c', 'echo hi from $(hostname); echo oops >&2; exit 4']);
    expect(ex.code).toBe(4);
    expect(ex.stdout).toMatch(/^hi from \S+\n$/);
    expect(ex.stderr).toBe('oops\n');
    expect((await cordonRemote('mh-b', ['kill', 'cli-1', 'KILL'])).code).toBe(0);
    await b.sup.waitFor('cli-1', ['stopped'], 10_000);
    expect((await cordonRemote('mh-b', ['delete', 'cli-1'])).code).toBe(0);
    expect(b.sup.ids()).toEqual([]);
  });

  it('errors: the remote code on stderr, exit 1; no host → usage error; unknown host → no-responders', async () => {
    const missing = await cordonRemote('mh-a', ['start', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^cordon: ContainerNotExists: mh-a start: container does not exist: nope\n$/);
    const noHost = await cordonRemote(undefined, ['list']);
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toContain('--nats needs --host');
    const nobody = await cordonRemote('nobody', ['list']);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/^cordon: NoResponders: nobody list: /);
    const bad = await cordonRemote('mh-a', ['kill', 'x', 'SIGFOO']);
    expect(bad.stderr).toMatch(/^cordon: BadRequest: mh-a kill: /);
  });
});
