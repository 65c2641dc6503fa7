/**
 * The OCI lifecycle through the real CLI, every verb a separate `node bin/cordon.js` process: create parks the
 * container before execve and exits, start releases it, kill/delete/list/state behave as runc's.
 */
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import {
  RFC3339,
  alive,
  cleanupCordonRoot,
  cmdline,
  cordon,
  errorLines,
  exe,
  freshRoot,
  ppid,
  removeIoDir,
  startCordon,
  stateOf,
  theFailure,
  waitFor,
  waitStatus, stateEntries } from './helpers.js';

/** Traps TERM and USR1 (so pid 1 of the namespace can die of them) and says which one arrived. */
const LOOP = 'trap "echo got-TERM; exit 4" TERM; trap "echo got-USR1; exit 3" USR1; echo started; while :; do sleep 0.1; done';
const ANNOTATIONS = { 'org.example.tier': 'test', 'cordon.test/owner': 'cli-suite' };
const STATE_KEYS = ['annotations', 'bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status'];

let root: string;
let annotated: Bundle;
let plain: Bundle;
let specVersion: string;

beforeAll(async () => {
  root = freshRoot('cordon-cli-lifecycle');
  annotated = makeBundle({ spec: (s) => {
    s.process.args = ['sh', '-c', LOOP];
    s.annotations = { ...ANNOTATIONS };
  } });
  plain = makeBundle({ spec: (s) => {
    s.process.args = ['sh', '-c', LOOP];
  } });
  const v = await cordon(root, ['--version']);
  specVersion = /^spec: (\S+)$/m.exec(v.stdout)?.[1] ?? 'unknown';
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  annotated?.cleanup();
  plain?.cleanup();
  removeIoDir();
});

/** create + start; resolves once the container's program runs (it printed "started"). */
async function createAndStart(id: string, b: Bundle = plain) {
  const create = startCordon(root, ['create', '-b', b.dir, id]);
  const c = await create.done;
  expect(c.code, c.stderr).toBe(0);
  const pid = (await stateOf(root, id)).pid as number;
  const s = await cordon(root, ['start', id]);
  expect(s.code, s.stderr).toBe(0);
  await waitFor(`${id} to print started`, () => create.stdoutNow().includes('started\n'));
  return { pid, output: create.stdoutNow };
}

describe('cordon CLI lifecycle (one process per verb)', () => {
  it('create parks the container before execve, exits, and start runs the program', async () => {
    const id = 'life-1';
    const pidFile = join(annotated.dir, 'life-1.pid');
    const before = Date.now();
    const create = startCordon(root, ['create', '-b', annotated.dir, '--pid-file', pidFile, id]);
    const r = await create.done;
    expect(r.code, r.stderr).toBe(0);
    expect(errorLines(r.stderr)).toEqual([]);
    expect(r.stdout).toBe('');

    const pidText = readFileSync(pidFile, 'utf8');
    expect(pidText).toMatch(/^[1-9]\d*$/);
    const pid = Number(pidText);
    const st = await stateOf(root, id);
    expect(Object.keys(st).sort()).toEqual(STATE_KEYS);
    expect(st).toEqual({
      ociVersion: specVersion,
      id,
      pid,
      status: 'created',
      bundle: annotated.dir,
      rootfs: join(annotated.dir, 'rootfs'),
      created: expect.stringMatching(RFC3339),
      owner: '',
      annotations: ANNOTATIONS,
    });
    const created = Date.parse(st.created as string);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(created).toBeLessThanOrEqual(Date.now() + 1000);

    // The container's init exists, has not exec'd (still the node binary that cordon create runs as), and does
    // not depend on the create process, which has exited.
    expect(alive(pid)).toBe(true);
    expect(create.child.pid).toBeGreaterThan(0);
    expect(alive(create.child.pid as number)).toBe(false);
    expect(ppid(pid)).not.toBe(create.child.pid);
    expect(exe(pid)).toBe(realpathSync(process.execPath));
    expect(cmdline(pid)).toContain('create');
    await new Promise((res) => setTimeout(res, 300));
    expect((await stateOf(root, id)).status).toBe('created');
    expect(exe(pid)).toBe(realpathSync(process.execPath));
    expect(create.stdoutNow()).toBe('');

    const s = await cordon(root, ['start', id]);
    expect(s.code, s.stderr).toBe(0);
    expect(errorLines(s.stderr)).toEqual([]);
    await waitFor('the container to exec busybox', () => exe(pid) === '/bin/busybox');
    expect(cmdline(pid)).toEqual(['sh', '-c', LOOP]);
    const running = await stateOf(root, id);
    expect(running).toEqual({ ...st, status: 'running' });
    // The container's stdout is the stdout create was given.
    await waitFor('"started" on create\'s stdout', () => create.stdoutNow() === 'started\n');

    const again = await cordon(root, ['start', id]);
    expect(again.code).toBe(1);
    expect(theFailure(again)).toEqual({ code: 'ContainerNotStopped', message: `cannot start an already running container: ${id}` });

    const del = await cordon(root, ['delete', id]);
    expect(del.code).toBe(1);
    expect(theFailure(del)).toEqual({ code: 'ContainerNotStopped', message: `cannot delete container ${id} that is not stopped: running` });
    expect(theFailure(del).message).toContain('not stopped');
    expect(alive(pid)).toBe(true);
    expect((await stateOf(root, id)).status).toBe('running');

    const force = await cordon(root, ['delete', '--force', id]);
    expect(force.code, force.stderr).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(join(root, id))).toBe(false);
    const gone = await cordon(root, ['state', id]);
    expect(gone.code).toBe(1);
    expect(theFailure(gone)).toEqual({ code: 'ContainerNotExists', message: `container does not exist: ${id}` });
  });

  it.each([
    { how: 'default (SIGTERM)', args: [] as string[], output: 'started\ngot-TERM\n' },
    { how: 'KILL', args: ['KILL'], output: 'started\n' },
    { how: '9', args: ['9'], output: 'started\n' },
    { how: 'SIGUSR1', args: ['SIGUSR1'], output: 'started\ngot-USR1\n' },
  ])('kill ID $how stops a container that dies of it', async ({ how, args, output }) => {
    const id = `kill-${how.replace(/\W+/g, '')}`;
    const c = await createAndStart(id);
    const k = await cordon(root, ['kill', id, ...args]);
    expect(k.code, k.stderr).toBe(0);
    expect(errorLines(k.stderr)).toEqual([]);
    const st = await waitStatus(root, id, 'stopped');
    expect(st.pid).toBe(0);
    expect(alive(c.pid)).toBe(false);
    expect(c.output()).toBe(output);

    const k2 = await cordon(root, ['kill', id, 'KILL']);
    expect(k2.code).toBe(1);
    expect(theFailure(k2)).toEqual({ code: 'ContainerNotRunning', message: `container not running: ${id} is stopped (cannot signal it)` });
    const d = await cordon(root, ['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(existsSync(join(root, id))).toBe(false);
  });

  it('kill with an unknown signal name is an error and sends nothing', async () => {
    const id = 'kill-unknown';
    const c = await createAndStart(id);
    const k = await cordon(root, ['kill', id, 'SIGFOO']);
    expect(k.code).toBe(1);
    expect(theFailure(k)).toEqual({ code: 'BadRequest', message: 'unknown signal "SIGFOO"' });
    await new Promise((res) => setTimeout(res, 300));
    expect((await stateOf(root, id)).status).toBe('running');
    expect(alive(c.pid)).toBe(true);
    expect(c.output()).toBe('started\n');
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    expect(alive(c.pid)).toBe(false);
  });

  it('delete of a created container works without --force (kills it, as runc)', async () => {
    const id = 'del-created';
    const r = await cordon(root, ['create', '-b', plain.dir, id]);
    expect(r.code, r.stderr).toBe(0);
    const st = await stateOf(root, id);
    // No annotations in the config: no annotations key (runc omits it too).
    expect(Object.keys(st).sort()).toEqual(STATE_KEYS.filter((k) => k !== 'annotations'));
    expect(st.status).toBe('created');
    const pid = st.pid as number;
    expect(alive(pid)).toBe(true);
    const d = await cordon(root, ['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(errorLines(d.stderr)).toEqual([]);
    expect(alive(pid)).toBe(false);
    expect(existsSync(join(root, id))).toBe(false);
  });

  it('list prints a table, JSON and ids', async () => {
    const a = 'list-a';
    const b = 'list-b';
    const ra = await cordon(root, ['create', '-b', annotated.dir, a]);
    expect(ra.code, ra.stderr).toBe(0);
    await createAndStart(b);
    const sa = await stateOf(root, a);
    const sb = await stateOf(root, b);
    expect(sa.status).toBe('created');
    expect(sb.status).toBe('running');

    const table = await cordon(root, ['list']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toMatch(/^ID {3,}PID {3,}STATUS {3,}BUNDLE {3,}CREATED {3,}OWNER$/);
    // Columns are aligned: every field of a row starts where its header does.
    const starts = ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'].map((h) => lines[0].indexOf(h));
    const rows = lines.slice(1).map((l) => starts.map((s, i) => l.slice(s, starts[i + 1]).trimEnd()));
    expect(rows).toEqual([
      [a, String(sa.pid), 'created', annotated.dir, sa.created, 'root'],
      [b, String(sb.pid), 'running', plain.dir, sb.created, 'root'],
    ]);

    const json = await cordon(root, ['list', '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([sa, sb]);

    const quiet = await cordon(root, ['list', '-q']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe(`${a}\n${b}\n`);

    const bad = await cordon(root, ['list', '--format', 'yaml']);
    expect(bad.code).toBe(1);
    expect(theFailure(bad)).toEqual({ code: 'BadRequest', message: 'invalid format option: yaml' });

    for (const id of [a, b]) expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    const empty = await cordon(root, ['list', '-q']);
    expect(empty.stdout).toBe('');
  });

  it('state of a missing container exits 1 with "does not exist"', async () => {
    const r = await cordon(root, ['state', 'no-such-container']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(theFailure(r)).toEqual({ code: 'ContainerNotExists', message: 'container does not exist: no-such-container' });
  });

  it('creating an id that exists fails and leaves the first container untouched', async () => {
    const id = 'dup';
    const pid1 = join(plain.dir, 'dup-1.pid');
    const pid2 = join(plain.dir, 'dup-2.pid');
    const first = startCordon(root, ['create', '-b', plain.dir, '--pid-file', pid1, id]);
    expect((await first.done).code).toBe(0);
    const before = await stateOf(root, id);
    const stateFile = readFileSync(join(root, id, 'state.json'), 'utf8');

    const second = await cordon(root, ['create', '-b', annotated.dir, '--pid-file', pid2, id]);
    expect(second.code).toBe(1);
    expect(theFailure(second)).toEqual({ code: 'IdInUse', message: `container with id exists: ${id}` });
    expect(existsSync(pid2)).toBe(false);
    expect(readFileSync(pid1, 'utf8')).toBe(String(before.pid));
    expect(await stateOf(root, id)).toEqual(before);
    expect(readFileSync(join(root, id, 'state.json'), 'utf8')).toBe(stateFile);
    expect(readdirSync(join(root, id)).sort()).toEqual(['exec.fifo', 'state.json']);
    expect(alive(before.pid as number)).toBe(true);

    // Still startable: its exec fifo is intact.
    expect((await cordon(root, ['start', id])).code).toBe(0);
    await waitFor('dup to run', () => first.stdoutNow() === 'started\n');
    expect((await stateOf(root, id)).status).toBe('running');
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
  });

  it.each(['a/b', '..', 'has space', 'semi;colon'])('rejects the invalid id %j and creates nothing', async (id) => {
    const r = await cordon(root, ['create', '-b', plain.dir, id]);
    expect(r.code).toBe(1);
    expect(theFailure(r)).toEqual({ code: 'InvalidIdFormat', message: `invalid container id format: ${JSON.stringify(id)}` });
    expect(stateEntries(root)).toEqual([]);
  });
});
