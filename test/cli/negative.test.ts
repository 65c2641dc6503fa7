/**
 * Bundles cordon must refuse: each failure is one clear error on stderr naming the config field, exit code 1,
 * and nothing left behind — no process rooted in (or naming) the bundle, no mount naming it, no state dir, no
 * pid file. Also: a mount through a symlink must never reach the host.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, type SpecMutator, makeBundle } from '../fixtures/bundle.js';
import {
  cleanupCordonRoot,
  cordon,
  freshRoot,
  hardNofile,
  hasCapSysResource,
  leftovers,
  removeIoDir,
  stateOf,
  theError,
} from './helpers.js';

let root: string;
const bundles: Bundle[] = [];
const hostDirs: string[] = [];

beforeAll(() => {
  root = freshRoot('cordon-cli-negative');
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  for (const b of bundles) b.cleanup();
  for (const d of hostDirs) rmSync(d, { recursive: true, force: true });
  removeIoDir();
});

function bundle(spec: SpecMutator): Bundle {
  const b = makeBundle({ spec });
  bundles.push(b);
  return b;
}

/** A directory on the host that a container must never touch. */
function hostDir(prefix: string): string {
  const d = mkdtempSync(`/tmp/${prefix}-`);
  hostDirs.push(d);
  return d;
}

function mountsOf(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}

/** `verb -b BUNDLE --pid-file F neg` must fail with exactly this error and leave nothing behind. */
async function expectCleanFailure(b: Bundle, expected: string | RegExp, verb: 'create' | 'run' = 'create'): Promise<string> {
  const pidFile = join(b.dir, 'neg.pid');
  const r = await cordon(root, [verb, '-b', b.dir, '--pid-file', pidFile, 'neg']);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const err = theError(r);
  if (typeof expected === 'string') expect(err).toBe(expected);
  else expect(err).toMatch(expected);
  expect(leftovers(b.dir, root, pidFile)).toEqual([]);
  expect((await cordon(root, ['list', '-q'])).stdout).toBe('');
  return err;
}

const SLEEP = ['sh', '-c', 'sleep 100'];

describe('cordon refuses bad bundles and leaves nothing behind', () => {
  it('missing rootfs: names root.path', async () => {
    const b = bundle((s) => {
      s.process.args = SLEEP;
      s.root.path = 'no-such-rootfs';
    });
    await expectCleanFailure(b, `cordon: root.path: rootfs "${join(b.dir, 'no-such-rootfs')}" does not exist`);
  });

  it('bad JSON in config.json: names config.json with line and column', async () => {
    const b = bundle((s) => {
      s.process.args = SLEEP;
    });
    writeFileSync(join(b.dir, 'config.json'), '{\n  "ociVersion": "1.0.2",\n  "process": { "args": ["sh",] }\n}\n');
    await expectCleanFailure(b, /^cordon: config\.json: invalid JSON at line 3 column 30: /);
  });

  it('unknown namespace type: names linux.namespaces[i] and the type', async () => {
    const b = bundle((s) => {
      s.process.args = SLEEP;
      s.linux.namespaces?.push({ type: 'foo' });
    });
    await expectCleanFailure(b, /^cordon: linux\.namespaces\[5\]\.type: unknown namespace type "foo"/);
  });

  it('unknown rlimit: names process.rlimits[0].type', async () => {
    const b = bundle((s) => {
      s.process.args = ['sh', '-c', 'ulimit -Hn'];
      s.process.rlimits = [{ type: 'RLIMIT_FOO', hard: 1, soft: 1 }];
    });
    await expectCleanFailure(b, 'cordon: process.rlimits[0].type: unknown rlimit "RLIMIT_FOO"');
  });

  it('missing executable by path: names process.args[0] and the path (create and run)', async () => {
    const b = bundle((s) => {
      s.process.args = ['/bin/does-not-exist', 'x'];
    });
    const re = /^cordon: process\.args\[0\]: .*"\/bin\/does-not-exist".*ENOENT/;
    await expectCleanFailure(b, re);
    await expectCleanFailure(b, re, 'run');
  });

  it('missing executable by name: names process.args[0] and the command (create and run)', async () => {
    const b = bundle((s) => {
      s.process.args = ['nonexistent-cmd'];
    });
    const msg = 'cordon: process.args[0]: executable "nonexistent-cmd" not found in $PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin) of the rootfs';
    await expectCleanFailure(b, msg);
    await expectCleanFailure(b, msg, 'run');
  });

  it('mount destination through a relative symlink climbing out of the rootfs: names mounts[i].destination', async () => {
    const target = hostDir('cordon-escape-target');
    const rel = `../../../../../tmp/${basename(target)}`;
    const b = bundle((s) => {
      s.process.args = SLEEP;
      s.mounts.push({ destination: '/mnt', type: 'tmpfs', source: 'tmpfs' });
    });
    symlinkSync(rel, join(b.rootfs, 'mnt'));
    const err = await expectCleanFailure(b, /^cordon: mounts\[7\]\.destination: "\/mnt" /);
    expect(err).toContain(`/mnt -> ${JSON.stringify(rel)}`);
    expect(err).toContain('outside the rootfs');
    expect(readdirSync(target)).toEqual([]);
    expect(mountsOf(target)).toEqual([]);
    expect(readdirSync(join(b.rootfs, 'tmp'))).toEqual([]);

    // A bind mount below it, through `run`: the same refusal.
    mkdirSync(join(b.dir, 'data'));
    const sub = bundle((s) => {
      s.process.args = SLEEP;
      s.mounts.push({ destination: '/mnt/sub', type: 'bind', source: join(b.dir, 'data'), options: ['rbind'] });
    });
    symlinkSync(rel, join(sub.rootfs, 'mnt'));
    const err2 = await expectCleanFailure(sub, /^cordon: mounts\[7\]\.destination: "\/mnt\/sub" /, 'run');
    expect(err2).toContain(`/mnt -> ${JSON.stringify(rel)}`);
    expect(readdirSync(target)).toEqual([]);
    expect(mountsOf(target)).toEqual([]);
  });

  it('mount destination through an absolute symlink lands inside the rootfs, never on the host path', async () => {
    const host = hostDir('cordon-host-dir');
    writeFileSync(join(host, 'marker'), 'host\n');
    const script = `echo inside > /mnt2/written && ls /mnt2 && grep " ${host} " /proc/self/mountinfo | grep -c " - tmpfs "`;
    const b = bundle((s) => {
      s.process.args = ['sh', '-c', script];
      s.mounts.push({ destination: '/mnt2', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
    });
    symlinkSync(host, join(b.rootfs, 'mnt2'));
    const r = await cordon(root, ['run', '-b', b.dir, 'abs-link']);
    expect(r.code, r.stderr).toBe(0);
    // The tmpfs is mounted at the link's target inside the container (rootfs + host path), and is empty but
    // for what the container wrote: the host directory (with its marker) is not what it sees.
    expect(r.stdout).toBe('written\n1\n');
    expect(readdirSync(host)).toEqual(['marker']);
    expect(readFileSync(join(host, 'marker'), 'utf8')).toBe('host\n');
    expect(mountsOf(host)).toEqual([]);
    const inside = join(b.rootfs, host);
    expect(statSync(inside).isDirectory()).toBe(true);
    expect(readdirSync(inside)).toEqual([]);
    expect(leftovers(b.dir, root)).toEqual([]);
  });

  it('negative oomScoreAdj: EACCES naming process.oomScoreAdj without CAP_SYS_RESOURCE', async () => {
    const b = bundle((s) => {
      s.process.args = SLEEP;
      s.process.oomScoreAdj = -500;
    });
    if (hasCapSysResource()) {
      // With the capability the kernel allows it: the container gets the value.
      const r = await cordon(root, ['create', '-b', b.dir, 'oom']);
      expect(r.code, r.stderr).toBe(0);
      const pid = (await stateOf(root, 'oom')).pid as number;
      expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim()).toBe('-500');
      expect((await cordon(root, ['delete', '--force', 'oom'])).code).toBe(0);
      expect(leftovers(b.dir, root)).toEqual([]);
      return;
    }
    await expectCleanFailure(b, /^cordon: (.*: )?process\.oomScoreAdj: write -500 to \/proc\/\d+\/oom_score_adj: EACCES\b/);
  });

  it('rlimit above the hard limit: EPERM naming process.rlimits[i]', async () => {
    const b = bundle((s) => {
      s.process.args = ['sh', '-c', 'ulimit -Hn'];
      s.process.rlimits = [
        { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
        { type: 'RLIMIT_NOFILE', hard: 1000000, soft: 1000000 },
      ];
    });
    if (hasCapSysResource() || hardNofile() >= 1000000) {
      // The kernel allows it here: the container runs with the new limit.
      const r = await cordon(root, ['run', '-b', b.dir, 'nofile']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('1000000\n');
      return;
    }
    await expectCleanFailure(b, 'cordon: process.rlimits[1]: setrlimit(RLIMIT_NOFILE, soft=1000000, hard=1000000) failed: EPERM (Operation not permitted)');
  });
});
