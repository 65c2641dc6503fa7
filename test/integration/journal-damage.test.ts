/**
 * One damaged byte in an early record no longer stops the host: the next CLI verb quarantines it (a warning on
 * stderr naming the journal, the byte offset, the seq and the container), and kill, delete --force, run and
 * events work on real containers — also on a container whose own `create` fact was the damaged one (replay
 * takes the state its later facts logged; reconcile checks it against the kernel).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readQuarantine } from '../../events/journal.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import { alive, cleanupCordonRoot, cordon, freshRoot, removeIoDir, stateOf, waitFor } from '../cli/helpers.js';

let sleeper: Bundle;
const roots: string[] = [];

beforeAll(() => {
  sleeper = makeBundle({ spec: (s) => void (s.process.args = ['sleep', '1000']) });
});

afterAll(async () => {
  for (const r of roots) await cleanupCordonRoot(r);
  sleeper.cleanup();
  removeIoDir();
});

/** The journal's lines, and the byte offset each starts at. */
function journalLines(root: string): Array<{ at: number; text: string }> {
  const text = readFileSync(join(root, 'events.journal'), 'utf8');
  const out: Array<{ at: number; text: string }> = [];
  let at = 0;
  for (const line of text.split('\n').slice(0, -1)) {
    out.push({ at, text: line });
    at += Buffer.byteLength(line) + 1;
  }
  return out;
}

/** Flip one bit of the first record of `action` for container `id` (inside its JSON); returns its offset and seq. */
function damage(root: string, id: string, action: string): { at: number; seq: number } {
  const file = join(root, 'events.journal');
  const line = journalLines(root).find((l) => l.text.includes(`"action":"${action}","containerId":"${id}"`));
  if (!line) throw new Error(`no ${action} record of ${id}`);
  const seq = (JSON.parse(line.text.slice(9)) as { seq: number }).seq;
  const bytes = readFileSync(file);
  bytes[line.at + 30] ^= 0x01;
  writeFileSync(file, bytes);
  return { at: line.at, seq };
}

describe('a damaged early record', () => {
  it('kill and delete --force of a running container whose own create record was damaged', async () => {
    const root = freshRoot('cordon-it-jdamage');
    roots.push(root);
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, 'web'])).code).toBe(0);
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, 'db'])).code).toBe(0);
    const webPid = (await stateOf(root, 'web')).pid as number;
    const dbPid = (await stateOf(root, 'db')).pid as number;
    const { at, seq } = damage(root, 'web', 'create');
    expect(seq).toBe(1);

    const check = await cordon(root, ['journal', 'check']);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`byte ${at}, `);
    expect(check.stdout).toContain('container(s) web');

    const kill = await cordon(root, ['kill', 'web', 'KILL']);
    expect(kill.code, kill.stderr).toBe(0);
    const warnings = kill.stderr.split('\n').filter((l) => l.startsWith('cordon: warning: '));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`journal ${join(root, 'events.journal')}: `);
    expect(warnings[0]).toContain(`damaged byte(s) at byte ${at} (checksum mismatch) holding seq 1`);
    expect(warnings[0]).toContain(`in ${join(root, 'events.journal.quarantine')}`);
    expect(warnings[0]).toContain('container(s) web');
    await waitFor('web to die', () => !alive(webPid));
    expect(readQuarantine(join(root, 'events.journal'))).toHaveLength(1);

    // Reported once: the next verbs say nothing about it.
    const del = await cordon(root, ['delete', 'web']);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stderr).toBe('');
    const delDb = await cordon(root, ['delete', '--force', 'db']);
    expect(delDb.code, delDb.stderr).toBe(0);
    expect(alive(dbPid)).toBe(false);

    // The id is free again; the history reads around the marker; the journal checks clean.
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, 'web'])).code).toBe(0);
    expect((await stateOf(root, 'web')).status).toBe('running');
    expect((await cordon(root, ['delete', '--force', 'web'])).code).toBe(0);
    const events = await cordon(root, ['events', '--no-follow', '--format', 'json']);
    expect(events.code, events.stderr).toBe(0);
    const seqs = events.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs[0]).toBe(2);
    expect(seqs).toEqual(seqs.map((_, i) => i + 2));
    const after = await cordon(root, ['journal', 'check']);
    expect(after.code, after.stdout).toBe(0);
    expect(after.stdout).toContain('quarantine markers: 1');
  });

  it('a container whose start record was damaged is still killable, and delete --force works', async () => {
    const root = freshRoot('cordon-it-jdamage');
    roots.push(root);
    expect((await cordon(root, ['run', '-d', '-b', sleeper.dir, 'app'])).code).toBe(0);
    const pid = (await stateOf(root, 'app')).pid as number;
    damage(root, 'app', 'start');
    const del = await cordon(root, ['delete', '--force', 'app']);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stderr).toContain('holding seq 2');
    expect(alive(pid)).toBe(false);
    expect((await cordon(root, ['list', '-q'])).stdout).toBe('');
  });
});
