/**
 * One lifecycle path: the same illegal commands sent through the three doors — a CLI process, the library,
 * a NATS command — get the same code and the same message, because only the container's machine decides.
 * Each door has its own state root with the same containers, made by CLI processes (so the library and the
 * supervisor behind NATS rebuild them from the log): `<door>-p` paused, `<door>-r` running, `<door>-s`
 * stopped (its process exited while nothing watched); their ids differ per door (a container's cgroups are
 * named after its id), so messages are compared with the door's prefix taken out. Nothing a refused command
 * touches changes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cordon } from '../../actors/cordon.js';
import { CordonClient, CordonCommandError } from '../../client/cordon-client.js';
import { LifecycleError } from '../../errors/index.js';
import { connectNats } from '../../events/nats-connection.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';
import { NatsServer } from '../fixtures/nats-server.js';
import { cordon, freshRoot, removeIoDir, stateOf, theFailure, waitStatus } from '../cli/helpers.js';
import { type TestHost, startHost } from './hosts.js';

interface Outcome {
  code: string;
  message: string;
}

type Verb = 'start' | 'pause' | 'resume' | 'kill' | 'exec' | 'delete' | 'create';

interface Door {
  root: string;
  /** The prefix of this door's container ids. */
  prefix: string;
  send(verb: Verb, id: string): Promise<Outcome | 'ok'>;
}

const bundles: Bundle[] = [];
let sleeper: Bundle;
let quick: Bundle;
let srv: NatsServer;
let nc: NatsConnection;
let lib: Cordon;
let natsHost: TestHost;
let client: CordonClient;
const doors: Record<'cli' | 'library' | 'nats', Door> = {} as never;

/** P-p paused, P-r running, P-s stopped — made by CLI processes under `root`. */
async function populate(root: string, p: string): Promise<void> {
  for (const args of [
    ['run', '-d', '-b', sleeper.dir, `${p}-p`],
    ['pause', `${p}-p`],
    ['run', '-d', '-b', sleeper.dir, `${p}-r`],
    ['run', '-d', '-b', quick.dir, `${p}-s`],
  ]) {
    const r = await cordon(root, args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  }
  await waitStatus(root, `${p}-s`, 'stopped');
}

const outcomeOf = (e: unknown, prefix = ''): Outcome => {
  expect(e).toBeInstanceOf(LifecycleError);
  const le = e as LifecycleError;
  expect(le.message.startsWith(prefix), le.message).toBe(true);
  return { code: le.code, message: le.message.slice(prefix.length) };
};

beforeAll(async () => {
  sleeper = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
  quick = makeBundle({ spec: (s) => void (s.process.args = ['true']) });
  bundles.push(sleeper, quick);

  const cliRoot = freshRoot('cordon-doors-cli');
  await populate(cliRoot, 'cli');
  doors.cli = {
    root: cliRoot,
    prefix: 'cli',
    async send(verb, id) {
      const args: Record<Verb, string[]> = {
        start: ['start', id], pause: ['pause', id], resume: ['resume', id], kill: ['kill', id, 'KILL'],
        exec: ['exec', id, 'true'], delete: ['delete', id], create: ['create', '-b', sleeper.dir, id],
      };
      const r = await cordon(cliRoot, args[verb]);
      return r.code === 0 ? 'ok' : theFailure(r);
    },
  };

  const libRoot = freshRoot('cordon-doors-lib');
  await populate(libRoot, 'lib');
  lib = await Cordon.open({ root: libRoot });
  doors.library = {
    root: libRoot,
    prefix: 'lib',
    async send(verb, id) {
      try {
        if (verb === 'create') await lib.create(id, { bundle: sleeper.dir });
        else {
          const c = lib.load(id);
          if (verb === 'start') await c.start();
          if (verb === 'pause') await c.pause();
          if (verb === 'resume') await c.resume();
          if (verb === 'kill') await c.signal(9);
          if (verb === 'exec') await c.exec({ args: ['true'] });
          if (verb === 'delete') await c.destroy();
        }
        return 'ok';
      } catch (e) {
        return outcomeOf(e);
      }
    },
  };

  srv = await NatsServer.start({ jetstream: false });
  nc = await connectNats({ servers: srv.url });
  natsHost = await startHost(nc, 'doors');
  const natsRoot = natsHost.root;
  // The supervisor is already running on its root: the CLI processes' facts reach its machines through the log.
  await populate(natsRoot, 'nats');
  client = new CordonClient(nc, { timeoutMs: 20_000 });
  const h = client.host('doors');
  doors.nats = {
    root: natsRoot,
    prefix: 'nats',
    async send(verb, id) {
      const nverb = verb === 'delete' ? 'destroy' : verb;
      try {
        if (verb === 'create') await h.create({ id, bundle: sleeper.dir });
        else if (verb === 'kill') await h.kill({ id, signal: 9 });
        else if (verb === 'exec') await h.exec({ id, args: ['true'] });
        else await h[nverb as 'start' | 'pause' | 'resume' | 'destroy']({ id });
        return 'ok';
      } catch (e) {
        expect(e).toBeInstanceOf(CordonCommandError);
        return outcomeOf(e, `doors ${nverb}: `);
      }
    },
  };
});

afterAll(async () => {
  await lib?.close();
  await natsHost?.cleanup();
  await nc?.close();
  await srv?.stop();
  for (const d of [doors.cli, doors.library]) if (d) await destroyAll(d.root);
  for (const b of bundles) b.cleanup();
  removeIoDir();
});

/** Cases: the command, the id (after the door's prefix and a dash: p, r, s, or one no door has), the code. */
const CASES: Array<[string, Verb, string, string]> = [
  ['pause a paused container', 'pause', 'p', 'ContainerPaused'],
  ['start a running one', 'start', 'r', 'ContainerNotStopped'],
  ['delete a running one without force', 'delete', 'r', 'ContainerNotStopped'],
  ['exec into a stopped one', 'exec', 's', 'ContainerNotRunning'],
  ['resume a running one', 'resume', 'r', 'ContainerNotPaused'],
  ['signal a stopped one', 'kill', 's', 'ContainerNotRunning'],
  ['start a stopped one', 'start', 's', 'ContainerNotRunning'],
  ['exec into a paused one', 'exec', 'p', 'ContainerPaused'],
  ['start one that does not exist', 'start', 'nope', 'ContainerNotExists'],
  ['an invalid id', 'start', 'a..b/c', 'InvalidIdFormat'],
  ['create with an id in use', 'create', 'r', 'IdInUse'],
];

describe('the same refusal from every door', () => {
  it.each(CASES)('%s: %s %s → %s from the CLI, the library and NATS, with the same message', async (_name, verb, id, code) => {
    const got: Record<string, Outcome | 'ok'> = {};
    for (const [name, door] of Object.entries(doors)) {
      const o = await door.send(verb, `${door.prefix}-${id}`);
      got[name] = o === 'ok' ? o : { code: o.code, message: o.message.replaceAll(`${door.prefix}-${id}`, 'ID') };
    }
    expect(got.cli, JSON.stringify(got)).toMatchObject({ code });
    expect(got.library, JSON.stringify(got)).toEqual(got.cli);
    expect(got.nats, JSON.stringify(got)).toEqual(got.cli);
  });

  it('after the refusals every root holds what it held: p paused, r running, s stopped, nothing else', async () => {
    for (const [name, door] of Object.entries(doors)) {
      const id = (x: string) => `${door.prefix}-${x}`;
      expect((await stateOf(door.root, id('p'))).status, name).toBe('paused');
      expect((await stateOf(door.root, id('r'))).status, name).toBe('running');
      expect((await stateOf(door.root, id('s'))).status, name).toBe('stopped');
      const actions = readFileSync(join(door.root, 'events.journal'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l.slice(9)) as { containerId: string; action: string }));
      // Only the facts of the set-up, and the exit of `s` its first door recorded: no refused command left one.
      expect(actions.filter((e) => e.containerId === id('r')).map((e) => e.action), name).toEqual(['create', 'start']);
      expect(actions.filter((e) => e.containerId === id('p')).map((e) => e.action), name).toEqual(['create', 'start', 'pause']);
      expect(actions.filter((e) => e.containerId === id('s')).map((e) => e.action), name).toEqual(['create', 'start', 'exit']);
      expect(actions.filter((e) => !['p', 'r', 's'].map(id).includes(e.containerId)), name).toEqual([]);
    }
  });
});
