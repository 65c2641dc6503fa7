/**
 * Errors that must say what went wrong, where (CLI processes, real containers as root): a damaged state.json
 * (truncated, `{}`, a field of the wrong type) is a StateCorrupt error naming the verb, the file and the reason,
 * `list` keeps showing that container (status "unknown", and a warning as runc's `load container`), `delete
 * --force` removes it with its process and cgroups; a full disk names the state file and ENOSPC; a closed
 * output pipe ends the command quietly; a relative mount destination behaves as runc 1.1.5 (accepted, with a
 * warning, relative to "/").
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, type OciSpecLike, makeBundle } from '../fixtures/bundle.js';
import { alive, cleanupCordonRoot, cordon, freshRoot, leftovers, removeIoDir, runc, startCordon, stateOf, theFailure, waitFor } from './helpers.js';

let root: string;
const bundles: Bundle[] = [];
const roots: string[] = [];

beforeAll(() => {
  root = freshRoot('cordon-cli-errors');
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  for (const r of roots) {
    await cleanupCordonRoot(r);
    rmSync(r, { recursive: true, force: true });
  }
  for (const b of bundles) b.cleanup();
  removeIoDir();
});

function bundle(args: string[], more?: (s: OciSpecLike) => void): Bundle {
  const b = makeBundle({
    spec: (s) => {
      s.process.args = args;
      more?.(s);
    },
  });
  bundles.push(b);
  return b;
}

/** Every cgroup directory of a container, from its state record. */
function cgroupDirs(stateFile: string): string[] {
  return Object.values((JSON.parse(readFileSync(stateFile, 'utf8')) as { cgroupPaths: Record<string, string> }).cgroupPaths);
}

describe('a damaged state.json', () => {
  const cases: Array<[name: string, damage: (file: string) => void, reason: RegExp]> = [
    ['truncated', (f) => truncateSync(f, 100), /is damaged: truncated JSON \(Unterminated string in JSON at position 100; 100 bytes\)$/],
    ['empty object', (f) => writeFileSync(f, '{}\n'), /is damaged: an empty object \(\{\}\): none of the fields of a state record$/],
    ['wrong type', (f) => writeFileSync(f, readFileSync(f, 'utf8').replace(/"pid":(\d+)/, '"pid":"$1"')), /is damaged: pid: expected a positive integer, got "\d+"$/],
  ];
  for (const [name, damage, reason] of cases) {
    it(`${name}: state and delete name the verb, the file and the reason; list shows it as unknown; delete --force removes everything`, async () => {
      const id = `dmg-${name.replace(/ /g, '-')}`;
      const b = bundle(['sleep', '1000']);
      const c = await cordon(root, ['create', '-b', b.dir, id]);
      expect(c.code, c.stderr).toBe(0);
      const pid = (await stateOf(root, id)).pid as number;
      const file = join(root, id, 'state.json');
      const cgroups = cgroupDirs(file);
      expect(cgroups.every((d) => existsSync(d))).toBe(true);
      damage(file);

      const st = await cordon(root, ['state', id]);
      expect(st.code).toBe(1);
      const f = theFailure(st);
      expect(f.code).toBe('StateCorrupt');
      expect(f.message).toMatch(new RegExp(`^state ${id}: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `));
      expect(f.message).toMatch(reason);

      const list = await cordon(root, ['list']);
      expect(list.code, list.stderr).toBe(0);
      const row = list.stdout.split('\n').find((l) => l.startsWith(`${id} `));
      expect(row, list.stdout).toMatch(new RegExp(`^${id}\\s+0\\s+unknown\\s`));
      expect(list.stderr).toContain(`cordon: warning: load container ${id}: ${file} is damaged: `);
      expect((await cordon(root, ['list', '-q'])).stdout.split('\n')).toContain(id);
      const json = JSON.parse((await cordon(root, ['list', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
      expect(json.find((e) => e.id === id)).toMatchObject({ id, status: 'unknown', pid: 0, error: expect.stringMatching(reason) });

      const del = await cordon(root, ['delete', id]);
      expect(del.code).toBe(1);
      const df = theFailure(del);
      expect(df.code).toBe('StateCorrupt');
      expect(df.message).toMatch(new RegExp(`^delete ${id}: .*\\(delete --force removes it\\)$`));
      expect(alive(pid)).toBe(true);

      const force = await cordon(root, ['delete', '--force', id]);
      expect(force.code, force.stderr).toBe(0);
      expect(force.stderr).toContain('written again from its create event');
      expect(alive(pid)).toBe(false);
      expect(cgroups.filter((d) => existsSync(d))).toEqual([]);
      expect(leftovers(b.dir, root)).toEqual([]);
      const events = (await cordon(root, ['events', '--no-follow', '--format', 'json', '--filter', `container=${id}`])).stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { action: string }).action);
      expect(events).toEqual(['create', 'kill', 'exit', 'destroy']);
    });
  }

  it('a daemon starts next to it: the others are supervised, the damaged one is named and left alone', async () => {
    const r = freshRoot('cordon-cli-errors-daemon');
    roots.push(r);
    const b = bundle(['sleep', '1000']);
    for (const id of ['dd-ok', 'dd-bad']) expect((await cordon(r, ['create', '-b', b.dir, id])).code).toBe(0);
    writeFileSync(join(r, 'dd-bad', 'state.json'), '{}\n');
    const d = startCordon(r, ['daemon'], { timeoutMs: 60_000 });
    try {
      const line = await waitFor('the daemon to start', () => readFileSync(d.stderrFile, 'utf8').split('\n').find((l) => l.includes('supervising')), 15_000);
      expect(line).toBe(`cordon daemon: supervising 1 container(s) under ${r}; re-adopted 1, exited while down 0; damaged state, not supervised: dd-bad`);
      expect(readFileSync(d.stderrFile, 'utf8')).toContain(`cordon daemon: recover dd-bad: ${join(r, 'dd-bad', 'state.json')} is damaged: an empty object`);
    } finally {
      d.child.kill('SIGTERM');
      await d.done;
    }
    for (const id of ['dd-ok', 'dd-bad']) expect((await cordon(r, ['delete', '--force', id])).code).toBe(0);
    expect(leftovers(b.dir, r)).toEqual([]);
  });

  it('with no record in the log either: delete --force removes the state dir and says what it could not know', async () => {
    const dir = join(root, 'dmg-orphan');
    mkdirSync(dir);
    writeFileSync(join(dir, 'state.json'), '{"id": "dmg-orph');
    const list = await cordon(root, ['list', '-q']);
    expect(list.stdout.split('\n')).toContain('dmg-orphan');
    const force = await cordon(root, ['delete', '--force', 'dmg-orphan']);
    expect(force.code, force.stderr).toBe(0);
    expect(force.stderr).toContain('the log has no record of it either');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('a full disk', () => {
  it('create names the state file and ENOSPC, and leaves nothing behind', async () => {
    const r = mkdtempSync(join(tmpdir(), 'cordon-enospc-'));
    roots.push(r);
    // The state root on a full 64 KiB tmpfs; the journal elsewhere, so the failure is the state file's.
    const journalDir = mkdtempSync(join(tmpdir(), 'cordon-enospc-journal-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', r]);
    try {
      symlinkSync(join(journalDir, 'events.journal'), join(r, 'events.journal'));
      writeFileSync(join(r, 'fill'), Buffer.alloc(64 * 1024));
      const b = bundle(['sleep', '1000']);
      const c = await cordon(r, ['create', '-b', b.dir, 'full']);
      expect(c.code).toBe(1);
      const f = theFailure(c);
      expect(f.code).toBe('SystemError');
      // The first file a create writes is its container lock (its intent), then state.json: either is named.
      expect([`container full: write ${join(r, '.locks', 'full')}: ENOSPC (no space left on device)`, `container full: write ${join(r, 'full', 'state.json')}: ENOSPC (no space left on device)`]).toContain(f.message);
      unlinkSync(join(r, 'fill'));
      expect(leftovers(b.dir, r).filter((l) => !l.endsWith('fill'))).toEqual([]);
    } finally {
      execFileSync('umount', [r]);
      rmSync(journalDir, { recursive: true, force: true });
    }
  });
});

/** A write end of a pipe nobody reads any more: a fifo opened for writing, its reader closed. */
function brokenPipe(): number {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-epipe-'));
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const r = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(fifo, constants.O_WRONLY);
  closeSync(r);
  rmSync(dir, { recursive: true, force: true });
  return w;
}

describe('a closed output pipe (cordon list | head -1)', () => {
  it('EPIPE on stdout: exits 141 with nothing on stderr', async () => {
    const b = bundle(['sleep', '1000']);
    expect((await cordon(root, ['create', '-b', b.dir, 'pipe-1'])).code).toBe(0);
    const w = brokenPipe();
    try {
      const r = await cordon(root, ['list'], { stdoutFd: w });
      expect([r.code, r.signal, r.stderr]).toEqual([141, null, '']);
    } finally {
      closeSync(w);
    }
    expect((await cordon(root, ['delete', '--force', 'pipe-1'])).code).toBe(0);
  });

  it('EPIPE on stderr (an error to report): exits 141, nothing on stdout', async () => {
    const w = brokenPipe();
    try {
      const r = await cordon(root, ['state', 'no-such-container'], { stderrFd: w });
      expect([r.code, r.signal, r.stdout]).toEqual([141, null, '']);
    } finally {
      closeSync(w);
    }
  });
});

describe('a relative mount destination', () => {
  it('is taken relative to "/" with a warning naming mounts[N].destination, as runc 1.1.5 does', async () => {
    const b = bundle(['sh', '-c', 'grep -c " /data " /proc/self/mountinfo'], (s) => void s.mounts.push({ destination: 'data', type: 'tmpfs', source: 'tmpfs' }));
    const n = (JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')) as { mounts: unknown[] }).mounts.length - 1;
    const r = await cordon(root, ['run', '-b', b.dir, 'rel-dest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('1\n');
    expect(r.stderr).toContain(`cordon: warning: mounts[${n}].destination: relative destination "data" is deprecated; using "/data"`);
    // runc 1.1.5 on the same bundle: accepted, mounted at /data, a warning that it is not absolute.
    const runcRoot = mkdtempSync(join(tmpdir(), 'cordon-errors-runc-'));
    try {
      const rr = await runc(runcRoot, ['run', '-b', b.dir, 'rel-dest-runc']);
      expect(rr.code, rr.stderr).toBe(0);
      expect(rr.stdout).toBe('1\n');
      expect(rr.stderr).toContain('mount destination data is not absolute');
    } finally {
      await runc(runcRoot, ['delete', '--force', 'rel-dest-runc']);
      rmSync(runcRoot, { recursive: true, force: true });
    }
  });
});
