/**
 * `cordon run` through the real CLI, compared with `runc run` on the same bundles: exit codes (own code,
 * killed from the host, pid 1 killing itself), stdout, signal forwarding, detach, and state cleanup.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';
import {
  CLI,
  alive,
  cleanupCordonRoot,
  cleanupRuncRoot,
  cliEnv,
  cmdline,
  cordon,
  errorLines,
  exe,
  freshRoot,
  removeIoDir,
  runc,
  startCordon,
  startRunc,
  stateOf,
  waitFor, stateEntries } from './helpers.js';

const READY_LOOP = 'echo ready; while :; do sleep 0.1; done';
const TRAP_TERM = `trap "echo got-TERM; exit 42" TERM; ${READY_LOOP}`;

let root: string;
let runcRoot: string;
const bundles: Bundle[] = [];

function bundleWith(script: string): Bundle {
  const b = makeBundle({ spec: (s) => {
    s.process.args = ['sh', '-c', script];
  } });
  bundles.push(b);
  return b;
}

let exit7: Bundle;
let sleeper: Bundle;
let trapTerm: Bundle;
let selfKill: Bundle;

beforeAll(() => {
  root = freshRoot('cordon-cli-run');
  runcRoot = freshRoot('cordon-cli-run-runc');
  exit7 = bundleWith('echo out-7; echo err-7 >&2; exit 7');
  sleeper = bundleWith(READY_LOOP);
  trapTerm = bundleWith(TRAP_TERM);
  selfKill = bundleWith('kill -KILL $$; echo survived; exit 5');
});

afterAll(async () => {
  await cleanupCordonRoot(root);
  await cleanupRuncRoot(runcRoot);
  for (const b of bundles) b.cleanup();
  removeIoDir();
});

/** Run a command with pipes for stdout/stderr (as a shell caller would capture them). */
function withPipes(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('cordon run', () => {
  it('exits with the container\'s exit code (exit 7 → 7, as runc), passes its output through, removes its state', async () => {
    const c = await cordon(root, ['run', '-b', exit7.dir, 'run-7']);
    const r = await runc(runcRoot, ['run', '-b', exit7.dir, 'runc-7']);
    expect(r.code).toBe(7);
    expect(c.code).toBe(r.code);
    expect(c.stdout).toBe('out-7\n');
    expect(r.stdout).toBe('out-7\n');
    expect(c.stderr.split('\n')).toContain('err-7');
    expect(errorLines(c.stderr)).toEqual([]);
    expect(existsSync(join(root, 'run-7'))).toBe(false);
    expect(stateEntries(root)).toEqual([]);
    expect((await cordon(root, ['list', '-q'])).stdout).toBe('');

    // Through pipes too: the caller's stdout is the container's stdout.
    const p = await withPipes(['--root', root, 'run', '-b', exit7.dir, 'run-7-pipe']);
    expect(p.code).toBe(7);
    expect(p.stdout).toBe('out-7\n');
    expect(p.stderr.split('\n')).toContain('err-7');
    expect(stateEntries(root)).toEqual([]);
  });

  it('exits 128+9 when the container is SIGKILLed from the host through `kill ID KILL`, as runc', async () => {
    const c = startCordon(root, ['run', '-b', sleeper.dir, 'run-kill']);
    await waitFor('cordon container ready', () => c.stdoutNow() === 'ready\n');
    expect((await stateOf(root, 'run-kill')).status).toBe('running');
    const k = await cordon(root, ['kill', 'run-kill', 'KILL']);
    expect(k.code, k.stderr).toBe(0);
    const cr = await c.done;

    const r = startRunc(runcRoot, ['run', '-b', sleeper.dir, 'runc-kill']);
    await waitFor('runc container ready', () => r.stdoutNow() === 'ready\n');
    const rk = await runc(runcRoot, ['kill', 'runc-kill', 'KILL']);
    expect(rk.code, rk.stderr).toBe(0);
    const rr = await r.done;

    expect(rr.code).toBe(137);
    expect(cr.code).toBe(rr.code);
    expect(cr.signal).toBe(null);
    expect(errorLines(cr.stderr)).toEqual([]);
    expect(stateEntries(root)).toEqual([]);
  });

  it('pid 1 cannot SIGKILL itself from inside its pid namespace: exits with its own code, as runc', async () => {
    const c = await cordon(root, ['run', '-b', selfKill.dir, 'run-self']);
    const r = await runc(runcRoot, ['run', '-b', selfKill.dir, 'runc-self']);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('survived\n');
    expect(c.code).toBe(r.code);
    expect(c.stdout).toBe('survived\n');
    expect(stateEntries(root)).toEqual([]);
  });

  it('forwards SIGTERM sent to the foreground run process to the container (trap → exit 42), as runc', async () => {
    const c = startCordon(root, ['run', '-b', trapTerm.dir, 'run-fwd']);
    await waitFor('cordon container ready', () => c.stdoutNow() === 'ready\n');
    const pid = (await stateOf(root, 'run-fwd')).pid as number;
    expect(c.child.kill('SIGTERM')).toBe(true);
    const cr = await c.done;

    const r = startRunc(runcRoot, ['run', '-b', trapTerm.dir, 'runc-fwd']);
    await waitFor('runc container ready', () => r.stdoutNow() === 'ready\n');
    expect(r.child.kill('SIGTERM')).toBe(true);
    const rr = await r.done;

    expect(rr.code).toBe(42);
    expect(rr.stdout).toBe('ready\ngot-TERM\n');
    expect(cr.code).toBe(42);
    expect(cr.stdout).toBe('ready\ngot-TERM\n');
    expect(errorLines(cr.stderr)).toEqual([]);
    expect(alive(pid)).toBe(false);
    expect(stateEntries(root)).toEqual([]);
  });

  it('run -d returns 0 with the container running; delete --force removes it', async () => {
    const id = 'run-detached';
    const pidFile = join(sleeper.dir, 'detached.pid');
    const d = startCordon(root, ['run', '-d', '-b', sleeper.dir, '--pid-file', pidFile, id]);
    const dr = await d.done;
    expect(dr.code, dr.stderr).toBe(0);
    expect(errorLines(dr.stderr)).toEqual([]);
    const st = await stateOf(root, id);
    expect(st.status).toBe('running');
    const pid = st.pid as number;
    expect(readFileSync(pidFile, 'utf8')).toBe(String(pid));
    // The run process is gone; the container keeps running its program.
    expect(alive(d.child.pid as number)).toBe(false);
    await waitFor('detached container ready', () => d.stdoutNow() === 'ready\n');
    expect(alive(pid)).toBe(true);
    expect(exe(pid)).toBe('/bin/busybox');
    expect(cmdline(pid)).toEqual(['sh', '-c', READY_LOOP]);

    const del = await cordon(root, ['delete', '--force', id]);
    expect(del.code, del.stderr).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(stateEntries(root)).toEqual([]);
  });
});
