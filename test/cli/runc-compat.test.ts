/**
 * cordon and runc interleaved on the same bundle: `state` has the same keys and the same statuses through
 * created → running → stopped, and the error cases read the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import {
  RFC3339,
  alive,
  cleanupCordonRoot,
  cleanupRuncRoot,
  cordon,
  freshRoot,
  removeIoDir,
  runc,
  stateOf,
  theFailure,
  waitStatus,
} from './helpers.js';

const LOOP = 'while :; do sleep 0.1; done';

let root: string;
let runcRoot: string;
let annotated: Bundle;
let plain: Bundle;

beforeAll(() => {
  root = freshRoot('cordon-cli-compat');
  runcRoot = freshRoot('cordon-cli-compat-runc');
  annotated = makeBundle({ spec: (s) => {
    s.process.args = ['sh', '-c', LOOP];
    s.annotations = { 'org.example.a': '1', 'org.example.b': 'two' };
  } });
  plain = makeBundle({ spec: (s) => {
    s.process.args = ['sh', '-c', LOOP];
  } });
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  await cleanupRuncRoot(runcRoot);
  annotated?.cleanup();
  plain?.cleanup();
  removeIoDir();
});

const keys = (o: Record<string, unknown>) => Object.keys(o).sort();

describe('cordon next to runc on one bundle', () => {
  it('state has runc\'s keys and statuses through created → running → stopped', async () => {
    const b = annotated;
    const seen: { runc: string[]; cordon: string[] } = { runc: [], cordon: [] };
    const both = async (expected: string) => {
      const r = expected === 'stopped' ? await waitStatus(runcRoot, 'r', 'stopped', 'runc') : await stateOf(runcRoot, 'r', 'runc');
      const c = expected === 'stopped' ? await waitStatus(root, 'c', 'stopped') : await stateOf(root, 'c');
      seen.runc.push(r.status as string);
      seen.cordon.push(c.status as string);
      expect(keys(c)).toEqual(keys(r));
      expect(keys(c)).toEqual(['annotations', 'bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
      // Everything but ociVersion (each prints its own), id, pid and created time matches.
      for (const k of ['status', 'bundle', 'rootfs', 'owner', 'annotations']) expect([k, c[k]]).toEqual([k, r[k]]);
      expect(c.created).toMatch(RFC3339);
      expect(r.created).toMatch(RFC3339);
      if (expected === 'stopped') expect([c.pid, r.pid]).toEqual([0, 0]);
      else {
        expect(c.pid).toBeGreaterThan(0);
        expect(r.pid).toBeGreaterThan(0);
      }
      return { r, c };
    };

    expect((await runc(runcRoot, ['create', '-b', b.dir, 'r'])).code).toBe(0);
    const cc = await cordon(root, ['create', '-b', b.dir, 'c']);
    expect(cc.code, cc.stderr).toBe(0);
    const created = await both('created');

    expect((await runc(runcRoot, ['start', 'r'])).code).toBe(0);
    expect((await cordon(root, ['start', 'c'])).code).toBe(0);
    await both('running');

    expect((await runc(runcRoot, ['kill', 'r', 'KILL'])).code).toBe(0);
    expect((await cordon(root, ['kill', 'c', 'KILL'])).code).toBe(0);
    await both('stopped');
    expect(alive(created.c.pid as number)).toBe(false);
    expect(alive(created.r.pid as number)).toBe(false);

    expect(seen.cordon).toEqual(['created', 'running', 'stopped']);
    expect(seen.runc).toEqual(seen.cordon);

    expect((await runc(runcRoot, ['delete', 'r'])).code).toBe(0);
    expect((await cordon(root, ['delete', 'c'])).code).toBe(0);
    const rs = await runc(runcRoot, ['state', 'r']);
    const cs = await cordon(root, ['state', 'c']);
    expect(rs.code).toBe(1);
    expect(cs.code).toBe(rs.code);
    expect(rs.stderr).toContain('container does not exist');
    expect(theFailure(cs)).toEqual({ code: 'ContainerNotExists', message: 'container does not exist: c' });
  });

  it('without annotations neither prints the key; error cases exit 1 with runc\'s wording', async () => {
    const b = plain;
    expect((await runc(runcRoot, ['create', '-b', b.dir, 'r2'])).code).toBe(0);
    expect((await cordon(root, ['create', '-b', b.dir, 'c2'])).code).toBe(0);
    const r = await stateOf(runcRoot, 'r2', 'runc');
    const c = await stateOf(root, 'c2');
    expect(keys(c)).toEqual(keys(r));
    expect(keys(c)).not.toContain('annotations');

    expect((await runc(runcRoot, ['start', 'r2'])).code).toBe(0);
    expect((await cordon(root, ['start', 'c2'])).code).toBe(0);

    const rk = await runc(runcRoot, ['kill', 'r2', 'FOO']);
    const ck = await cordon(root, ['kill', 'c2', 'FOO']);
    expect(rk.code).toBe(1);
    expect(ck.code).toBe(rk.code);
    expect(rk.stderr).toContain('unknown signal \\"FOO\\"');
    expect(theFailure(ck)).toEqual({ code: 'BadRequest', message: 'unknown signal "FOO"' });

    const rd = await runc(runcRoot, ['delete', 'r2']);
    const cd = await cordon(root, ['delete', 'c2']);
    expect(rd.code).toBe(1);
    expect(cd.code).toBe(rd.code);
    expect(rd.stderr).toContain('cannot delete container r2 that is not stopped: running');
    expect(theFailure(cd)).toEqual({ code: 'ContainerNotStopped', message: 'cannot delete container c2 that is not stopped: running' });

    const rs = await runc(runcRoot, ['start', 'r2']);
    const cs = await cordon(root, ['start', 'c2']);
    expect(rs.code).toBe(1);
    expect(cs.code).toBe(rs.code);
    expect(rs.stderr).toContain('cannot start an already running container');
    expect(theFailure(cs)).toEqual({ code: 'ContainerNotStopped', message: 'cannot start an already running container: c2' });

    expect((await runc(runcRoot, ['delete', '--force', 'r2'])).code).toBe(0);
    expect((await cordon(root, ['delete', '--force', 'c2'])).code).toBe(0);
    expect(alive(c.pid as number)).toBe(false);
    expect(alive(r.pid as number)).toBe(false);
  });
});
