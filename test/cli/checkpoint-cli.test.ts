/**
 * `cordon checkpoint` and `cordon restore` refusals through the real CLI, next to runc 1.1.5 on the same bundle
 * (neither needs CRIU to refuse): a created or stopped container cannot be checkpointed and no image directory
 * is made; a restore onto a live id is refused; a restore from a missing image directory leaves nothing; flags
 * cordon cannot honour are refused, not ignored.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { cordon, removeIoDir, runc, stateEntries, theFailure } from './helpers.js';

const root = mkdtempSync('/tmp/cordon-cli-ckpt-root-');
const runcRoot = mkdtempSync('/tmp/cordon-cli-ckpt-runc-');
const work = mkdtempSync('/tmp/cordon-cli-ckpt-work-');
let b: Bundle | undefined;

afterAll(async () => {
  for (const id of ['k1', 'k2']) {
    await cordon(root, ['delete', '--force', id]).catch(() => undefined);
    await runc(runcRoot, ['delete', '--force', id]).catch(() => undefined);
  }
  b?.cleanup();
  for (const d of [root, runcRoot, work]) rmSync(d, { recursive: true, force: true });
  removeIoDir();
});

describe('checkpoint/restore refusals, as runc', () => {
  it('created and stopped containers are not checkpointed (no image dir made); a restore onto a live id is refused', async () => {
    b = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
    for (const [tool, r] of [['cordon', root], ['runc', runcRoot]] as const) {
      const run = (args: string[]) => (tool === 'cordon' ? cordon(r, args, { cwd: work }) : runc(r, args, { cwd: work }));
      expect((await run(['create', '-b', (b as Bundle).dir, 'k1'])).code, tool).toBe(0);
      const img = join(work, `${tool}-created`);
      const c = await run(['checkpoint', '--image-path', img, 'k1']);
      expect(c.code, `${tool}: ${c.stderr}`).toBe(1);
      expect(existsSync(img), tool).toBe(false);
      expect(existsSync(join(work, 'checkpoint')), tool).toBe(false);
      expect((await run(['start', 'k1'])).code, tool).toBe(0);
      const onto = await run(['restore', '-d', '--image-path', join(work, 'none'), 'k1']);
      expect(onto.code, `${tool}: ${onto.stderr}`).toBe(1);
      expect((await run(['kill', 'k1', 'KILL'])).code, tool).toBe(0);
    }
    expect(theFailure(await cordon(root, ['checkpoint', '--image-path', join(work, 'x'), 'k1'], { cwd: work })).code).toMatch(/ContainerNotRunning/);
    expect(theFailure(await cordon(root, ['restore', '-d', '--image-path', join(work, 'x'), 'k1'], { cwd: work })).code).toBe('ContainerNotStopped');
  });

  it('a restore from a missing image directory leaves nothing; without -b a new id does not exist', async () => {
    b ??= makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
    const before = stateEntries(root).sort();
    const missing = await cordon(root, ['restore', '-d', '-b', b.dir, '--image-path', join(work, 'nothing'), 'k2'], { cwd: work });
    expect(theFailure(missing)).toMatchObject({ code: 'ConfigInvalid' });
    expect(theFailure(missing).message).toContain(join(work, 'nothing'));
    expect(stateEntries(root).sort()).toEqual(before);
    const r = await runc(runcRoot, ['restore', '-d', '-b', b.dir, '--image-path', join(work, 'nothing'), 'k2'], { cwd: work });
    expect(r.code).toBe(1);
    expect(theFailure(await cordon(root, ['restore', '-d', '--image-path', join(work, 'nothing'), 'k2'], { cwd: work })).code).toBe('ContainerNotExists');
  });

  it('flags cordon cannot honour are refused, naming the flag', async () => {
    for (const [flag, ...v] of [['--console-socket', '/tmp/s'], ['--no-pivot'], ['--no-subreaper']]) {
      const r = await cordon(root, ['restore', flag, ...v, 'k3'], { cwd: work });
      expect(theFailure(r).message).toContain(flag);
    }
    expect(theFailure(await cordon(root, ['checkpoint', '--manage-cgroups-mode', 'sometimes', 'k3'])).code).toMatch(/BadRequest|ContainerNotExists/);
    expect(theFailure(await cordon(root, ['checkpoint'])).code).toBe('BadRequest');
  });
});
