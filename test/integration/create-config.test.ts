/**
 * The config of create is the container's config: start (its hooks), exec (process, env, cwd, caps,
 * seccomp) and delete (poststop hooks) use what state.json kept at create, as runc does. Editing config.json
 * after create, or removing the whole bundle, changes nothing — checked from inside the container.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type OciSpecLike, ROOTFS, defaultSpec } from '../fixtures/bundle.js';
import { alive, cleanupCordonRoot, cordon, freshRoot, removeIoDir, stateOf, theFailure, waitStatus } from '../cli/helpers.js';

const root = freshRoot('cordon-createcfg');
const dirs: string[] = [];

afterAll(async () => {
  await cleanupCordonRoot(root);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  removeIoDir();
});

const scratch = (prefix: string) => {
  const d = mkdtempSync(`/tmp/cordon-createcfg-${prefix}-`);
  dirs.push(d);
  return d;
};

/** A hook that appends `word` to `file` (a shell on the host). */
const marker = (file: string, word: string) => ({ path: '/bin/sh', args: ['sh', '-c', `echo ${word} >> ${file}`] });

/** A bundle whose rootfs lives outside it (root.path absolute), so the whole bundle dir can be removed. */
function bundle(marks: string): { dir: string; spec: OciSpecLike } {
  const rootfs = join(scratch('rootfs'), 'rootfs');
  cpSync(ROOTFS, rootfs, { recursive: true, verbatimSymlinks: true });
  const dir = scratch('bundle');
  const spec = defaultSpec();
  spec.root = { path: rootfs, readonly: false };
  spec.process.args = ['sleep', '1000'];
  spec.process.env = ['PATH=/bin:/usr/bin', 'MARK=from-create'];
  spec.process.cwd = '/tmp';
  (spec as unknown as { hooks: unknown }).hooks = {
    startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo start-create >> /tmp/hooks.log'] }],
    poststop: [marker(join(marks, 'poststop.log'), 'poststop-create')],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return { dir, spec };
}

/** config.json rewritten: another process env and cwd, other hooks. */
function edit(dir: string, marks: string): void {
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as OciSpecLike & { hooks: unknown };
  spec.process.env = ['PATH=/bin:/usr/bin', 'MARK=edited'];
  spec.process.cwd = '/';
  spec.process.args = ['sh', '-c', 'exit 7'];
  spec.hooks = {
    startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo start-edited >> /tmp/hooks.log'] }],
    poststop: [marker(join(marks, 'poststop.log'), 'poststop-edited')],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
}

describe('after create, the bundle is not read again', () => {
  it('start runs the create-time startContainer hook and process; exec the create-time env and cwd; delete the create-time poststop — with config.json edited, then the bundle removed', async () => {
    const marks = scratch('marks');
    const b = bundle(marks);
    const id = 'cfg-1';
    const c = await cordon(root, ['create', '-b', b.dir, id]);
    expect(c.code, c.stderr).toBe(0);

    edit(b.dir, marks);
    const s = await cordon(root, ['start', id]);
    expect(s.code, s.stderr).toBe(0);
    const st = await stateOf(root, id);
    expect(st.status).toBe('running'); // the create-time `sleep 1000`, not the edited `exit 7`
    const pid = st.pid as number;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['sleep', '1000']);

    const inside = async () => {
      const r = await cordon(root, ['exec', id, 'sh', '-c', 'echo "$MARK $(pwd)"; cat /tmp/hooks.log']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(await inside()).toBe('from-create /tmp\nstart-create\n');

    // The bundle is gone altogether: exec still runs the create-time process, delete still has its hooks.
    rmSync(b.dir, { recursive: true, force: true });
    expect(existsSync(b.dir)).toBe(false);
    expect(await inside()).toBe('from-create /tmp\nstart-create\n');
    const k = await cordon(root, ['kill', id, 'KILL']);
    expect(k.code, k.stderr).toBe(0);
    await waitStatus(root, id, 'stopped');
    expect(alive(pid)).toBe(false);
    const d = await cordon(root, ['delete', id]);
    expect(d.code, d.stderr).toBe(0);
    expect(readFileSync(join(marks, 'poststop.log'), 'utf8')).toBe('poststop-create\n');
    const gone = await cordon(root, ['state', id]);
    expect(theFailure(gone).code).toBe('ContainerNotExists');
  });

  it('a library exec gets the create-time process after config.json changed', async () => {
    const { Cordon } = await import('../../actors/cordon.js');
    const marks = scratch('marks');
    const b = bundle(marks);
    const lib = await Cordon.open({ root });
    try {
      const c = await lib.create('cfg-lib', { bundle: b.dir });
      await c.start();
      edit(b.dir, marks);
      const out = join(scratch('out'), 'out');
      const fd = (await import('node:fs')).openSync(out, 'w');
      const e = await c.exec({ args: ['sh', '-c', 'echo "$MARK $(pwd)"'], stdio: [fd, fd, fd] });
      expect(await e.exited).toEqual({ exitCode: 0, signal: null });
      expect(readFileSync(out, 'utf8')).toBe('from-create /tmp\n');
      await c.destroy({ force: true });
      expect(readFileSync(join(marks, 'poststop.log'), 'utf8')).toBe('poststop-create\n');
    } finally {
      await lib.close();
    }
  });
});
