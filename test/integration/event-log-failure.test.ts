/**
 * No silent loss: a verb whose fact cannot be appended fails visibly (EventLogFailed, naming the journal and
 * errno) and leaves the container as the log describes it — on a full filesystem (the state root on a small
 * tmpfs, filled up), and with the journal made unwritable (read-only at open; immutable under a supervisor
 * that holds it open). After each refusal the kernel is checked: nothing frozen, killed, exec'd, created
 * or changed; the journal has no torn record; and the same verbs succeed once there is room again.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cordon } from '../../actors/cordon.js';
import { LifecycleError } from '../../errors/index.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';
import { openJournal } from '../../actors/event-recorder.js';
import { encodeRecord } from '../../events/journal.js';
import { newEvent } from '../../events/schema.js';
import { alive, cordon, removeIoDir, stateOf, theFailure } from '../cli/helpers.js';import { fillFilesystem } from '../fixtures/disk.js';


const bundles: Bundle[] = [];
const mounts: string[] = [];
const dirs: string[] = [];
/** Roots that are not mounts of their own, whose leftovers afterAll deletes. */
const roots: string[] = [];
let sleeper: Bundle;

beforeAll(() => {
  sleeper = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
  bundles.push(sleeper);
});

afterAll(async () => {
  for (const m of [...mounts].reverse()) {
    await destroyAll(m).catch(() => {});
    execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  }
  for (const r of roots) {
    try {
      execFileSync('chattr', ['-i', join(r, 'events.journal')], { stdio: 'ignore' });
    } catch {
      // not made immutable
    }
    await destroyAll(r).catch(() => {});
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const b of bundles) b.cleanup();
  removeIoDir();
});

/** A state root on its own small tmpfs. */
function smallRoot(sizeKiB: number): string {
  const d = mkdtempSync('/tmp/cordon-it-full-');
  dirs.push(d);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0711`, 'tmpfs', d]);
  mounts.push(d);
  return d;
}

/**
 * Append one padding fact (an `error` of a container "pad") so that the journal ends on a page boundary: on a
 * full tmpfs the next record then needs a page of its own, as on a full disk (else it fits the last page's slack).
 */
async function padJournal(root: string): Promise<void> {
  const file = join(root, 'events.journal');
  const store = openJournal(file);
  try {
    const event = (n: number) => ({ ...newEvent('pad-host', 'pad', 'error', { message: 'x'.repeat(n) }), seq: store.lastSeq() + 1, containerSeq: 1 });
    const size = statSync(file).size;
    const base = encodeRecord(event(0)).length;
    let target = 4096 - (size % 4096);
    if (target < base) target += 4096;
    await store.append([newEvent('pad-host', 'pad', 'error', { message: 'x'.repeat(target - base) })]);
  } finally {
    await store.close();
  }
  expect(statSync(file).size % 4096).toBe(0);
}


const freezerState = (id: string) => readFileSync(`/sys/fs/cgroup/freezer/${id}/freezer.state`, 'utf8').trim();
const cgroupProcs = (id: string) => readFileSync(`/sys/fs/cgroup/pids/${id}/cgroup.procs`, 'utf8').trim().split('\n').filter(Boolean).map(Number);
const pidsMax = (id: string) => readFileSync(`/sys/fs/cgroup/pids/${id}/pids.max`, 'utf8').trim();
const journalOf = (root: string) => readFileSync(join(root, 'events.journal'));
const actions = (root: string) => journalOf(root).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l.slice(9)) as { action: string; containerId: string; seq: number });

describe('a full filesystem under the state root', () => {
  it('every recording verb fails with EventLogFailed naming the journal and ENOSPC; the kernel and the log agree afterwards; with room again the verbs work', async () => {
    const root = smallRoot(2048);
    const run = 'full-run';
    const made = 'full-made';
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, run])).code).toBe(0);
    expect((await cordon(root, ['create', '-b', sleeper.dir, made])).code).toBe(0);
    const runPid = (await stateOf(root, run)).pid as number;
    const madePid = (await stateOf(root, made)).pid as number;
    await padJournal(root);
    const filler = fillFilesystem(root);
    const before = journalOf(root);

    const refused = async (args: string[]) => {
      const r = await cordon(root, args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      const f = theFailure(r);
      expect(f.code, args.join(' ')).toBe('EventLogFailed');
      expect(f.message).toContain(`event log ${join(root, 'events.journal')}`);
      expect(f.message).toContain('ENOSPC');
      // The log is exactly as it was: no record, not even a torn one.
      expect(journalOf(root).equals(before), args.join(' ')).toBe(true);
    };

    await refused(['pause', run]);
    expect(freezerState(run)).toBe('THAWED');
    await refused(['kill', run, 'KILL']);
    expect(alive(runPid)).toBe(true);
    await refused(['exec', run, 'sh', '-c', 'touch /tmp/ran']);
    expect(cgroupProcs(run)).toEqual([runPid]); // the exec was stopped at its gate, before it ran
    expect(existsSync(join(sleeper.rootfs, 'tmp', 'ran'))).toBe(false);
    const maxBefore = pidsMax(run);
    await refused(['update', '--pids-limit', '42', run]);
    expect(pidsMax(run)).toBe(maxBefore);
    await refused(['start', made]);
    expect((await stateOf(root, made)).status).toBe('created');
    expect(readFileSync(`/proc/${madePid}/cmdline`, 'utf8')).not.toContain('sleep');
    await refused(['delete', '--force', run]);
    expect(alive(runPid)).toBe(true);
    const c = await cordon(root, ['create', '-b', sleeper.dir, 'full-new']);
    expect(c.code).toBe(1);
    expect(['EventLogFailed', 'SystemError']).toContain(theFailure(c).code); // the state dir or the log: no space either way
    expect(theFailure(c).message).toContain('ENOSPC');
    expect(existsSync(join(root, 'full-new'))).toBe(false);
    expect(existsSync('/sys/fs/cgroup/pids/full-new')).toBe(false);
    expect(journalOf(root).equals(before)).toBe(true);
    expect((await stateOf(root, run)).status).toBe('running');

    // Room again: the same verbs go through, and the journal is one gap-free history.
    rmSync(filler);
    expect((await cordon(root, ['pause', run])).code).toBe(0);
    expect(freezerState(run)).toBe('FROZEN');
    expect((await cordon(root, ['resume', run])).code).toBe(0);
    expect((await cordon(root, ['start', made])).code).toBe(0);
    for (const id of [run, made]) expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    const all = actions(root);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(all.filter((e) => e.containerId === run).map((e) => e.action)).toEqual(['create', 'start', 'pause', 'resume', 'kill', 'exit', 'destroy']);
    expect(readdirSync(root).sort()).toEqual(['events.journal']);
  });
});

describe('an unwritable journal', () => {
  it('read-only at open: every recording verb fails with EventLogFailed naming the journal and EROFS, and changes nothing', async () => {
    const root = mkdtempSync('/tmp/cordon-it-rojournal-');
    dirs.push(root);
    roots.push(root);
    const id = 'ro-run';
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, id])).code).toBe(0);
    const pid = (await stateOf(root, id)).pid as number;
    const file = join(root, 'events.journal');
    execFileSync('mount', ['--bind', file, file]);
    execFileSync('mount', ['-o', 'remount,bind,ro', file]);
    try {
      for (const args of [['pause', id], ['kill', id, 'KILL'], ['delete', '--force', id], ['create', '-b', sleeper.dir, 'ro-new']]) {
        const r = await cordon(root, args);
        expect(r.code, args.join(' ')).toBe(1);
        const f = theFailure(r);
        expect(f.code).toBe('EventLogFailed');
        expect(f.message).toContain(`event log ${file}`);
        expect(f.message).toContain('EROFS');
      }
      expect(alive(pid)).toBe(true);
      expect(freezerState(id)).toBe('THAWED');
      expect(existsSync(join(root, 'ro-new'))).toBe(false);
      expect((await stateOf(root, id)).status).toBe('running');
      await expect(Cordon.open({ root })).rejects.toMatchObject({ code: 'EventLogFailed' });
    } finally {
      execFileSync('umount', [file]);
    }
    expect((await cordon(root, ['delete', '--force', id])).code).toBe(0);
    expect(alive(pid)).toBe(false);
  });

  it('made immutable under a supervisor that holds it open: its verbs fail with EventLogFailed (EPERM) and are undone; thawed, not killed, nothing exec\'d', async () => {
    const root = mkdtempSync('/tmp/cordon-it-immutable-');
    dirs.push(root);
    roots.push(root);
    const lib = await Cordon.open({ root });
    const file = join(root, 'events.journal');
    try {
      const c = await lib.create('imm', { bundle: sleeper.dir });
      await c.start();
      const pid = (await c.state()).oci.pid;
      const size = statSync(file).size;
      execFileSync('chattr', ['+i', file]);
      try {
        const failing = async (what: string, f: () => Promise<unknown>) => {
          const e = await f().then(() => undefined, (x: unknown) => x);
          expect(e, what).toBeInstanceOf(LifecycleError);
          expect((e as LifecycleError).code, what).toBe('EventLogFailed');
          expect((e as LifecycleError).message).toContain(`event log ${file}`);
          expect((e as LifecycleError).errno).toBe(1); // EPERM
        };
        await failing('pause', () => c.pause());
        expect(freezerState('imm')).toBe('THAWED');
        expect((await c.state()).machine).toBe('running');
        await failing('signal', () => c.signal(9));
        expect(alive(pid)).toBe(true);
        await failing('exec', () => c.exec({ args: ['true'] }));
        expect(cgroupProcs('imm')).toEqual([pid]);
        await failing('destroy', () => c.destroy({ force: true }));
        expect(alive(pid)).toBe(true);
        expect((await c.state()).machine).toBe('running');
        expect(statSync(file).size).toBe(size);
      } finally {
        execFileSync('chattr', ['-i', file]);
      }
      await c.pause();
      expect(freezerState('imm')).toBe('FROZEN');
      await c.destroy({ force: true });
      expect(alive(pid)).toBe(false);
    } finally {
      await lib.close();
    }
    expect(readdirSync(root).filter((e) => !e.startsWith('events.journal'))).toEqual([]);
  });
});
