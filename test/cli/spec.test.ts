/**
 * `cordon spec` writes a config.json that `cordon run` accepts once args are set, with the same layout as
 * `runc spec`, and refuses to overwrite an existing one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTFS } from '../fixtures/bundle.js';
import { cleanupCordonRoot, cordon, errorLines, exec, freshRoot, leftovers, removeIoDir, theError } from './helpers.js';

let root: string;
let work: string;

beforeAll(() => {
  root = freshRoot('cordon-cli-spec');
  work = mkdtempSync(join(tmpdir(), 'cordon-cli-spec-bundles-'));
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  rmSync(work, { recursive: true, force: true });
  removeIoDir();
});

type Json = Record<string, unknown>;
const keys = (o: unknown) => Object.keys(o as Json).sort();

describe('cordon spec', () => {
  it('writes a config.json (-b DIR) that run accepts after setting args, and refuses to overwrite it', async () => {
    const dir = join(work, 'bundle');
    mkdirSync(dir);
    const r = await cordon(root, ['spec', '-b', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readdirSync(dir)).toEqual(['config.json']);
    const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Json & { process: Json; root: Json };
    expect(spec.root).toEqual({ path: 'rootfs', readonly: true });
    expect(spec.process.args).toEqual(['sh']);
    expect(spec.process.terminal).toBe(false);

    execFileSync('cp', ['-a', '--', `${ROOTFS}/.`, join(dir, 'rootfs')]);
    spec.process.args = ['sh', '-c', 'echo spec-ok; hostname'];
    const edited = JSON.stringify(spec, null, '\t');
    writeFileSync(join(dir, 'config.json'), edited);
    const run = await cordon(root, ['run', '-b', dir, 'from-spec']);
    expect(run.code, run.stderr).toBe(0);
    expect(errorLines(run.stderr)).toEqual([]);
    expect(run.stdout).toBe(`spec-ok\n${spec.hostname as string}\n`);
    expect(leftovers(dir, root)).toEqual([]);

    const again = await cordon(root, ['spec', '-b', dir]);
    expect(again.code).toBe(1);
    expect(theError(again)).toBe(`cordon: File ${join(dir, 'config.json')} exists. Remove it first`);
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(edited);
  });

  it('without -b writes ./config.json, laid out as runc spec\'s', async () => {
    const mine = join(work, 'cwd-cordon');
    const theirs = join(work, 'cwd-runc');
    mkdirSync(mine);
    mkdirSync(theirs);
    const r = await cordon(root, ['spec'], { cwd: mine });
    expect(r.code, r.stderr).toBe(0);
    const rr = await exec('runc', ['spec'], { cwd: theirs });
    expect(rr.code, rr.stderr).toBe(0);
    const c = JSON.parse(readFileSync(join(mine, 'config.json'), 'utf8')) as Json & { process: Json; linux: Json };
    const g = JSON.parse(readFileSync(join(theirs, 'config.json'), 'utf8')) as Json & { process: Json; linux: Json };
    expect(keys(c)).toEqual(keys(g));
    expect(keys(c.process)).toEqual(keys(g.process));
    expect(keys(c.linux)).toEqual(keys(g.linux));
    expect(c.mounts).toEqual(g.mounts);
    expect(c.process.capabilities).toEqual(g.process.capabilities);

    const again = await cordon(root, ['spec'], { cwd: mine });
    expect(again.code).toBe(1);
    expect(theError(again)).toBe('cordon: File config.json exists. Remove it first');
  });
});
