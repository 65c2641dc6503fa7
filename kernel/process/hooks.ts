/**
 * OCI hooks: a program run with the container's state JSON on stdin, its own argv and env, and a timeout.
 * Runtime-namespace hooks (prestart, createRuntime, poststart, poststop) are plain host processes;
 * container-namespace hooks (createContainer, startContainer) are spawned with the spawn engine into the
 * namespaces of the container's init, so their path and view are the container's at that moment.
 */
import { spawn as spawnProcess } from 'node:child_process';
import fs from 'node:fs';
import { compilePlan } from '../spawn/chain.js';
import { O } from '../sys/flags.js';
import { NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES } from '../container/namespaces.js';
import { openPipe } from '../io/fd.js';
import { SpawnPlan } from '../spawn/spawn-plan.js';
import { spawn } from '../spawn/spawn.js';
import type { NamespaceType } from '../../config/model.js';

/** One hook (OCI `hooks.<point>[i]`). */
export interface HookSpec {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds. */
  timeout?: number;
}

/** A hook that failed: names the hook (its JSON path), the program and why. */
export class HookError extends Error {
  readonly field: string;

  constructor(field: string, path: string, why: string) {
    super(`${field}: hook ${path} ${why}`);
    this.name = 'HookError';
    this.field = field;
  }
}

/** Where a hook runs: the runtime's namespaces, or those of a container's process. */
export type HookPlace = { kind: 'runtime' } | { kind: 'container'; pid: number; namespaces: NamespaceType[] };

const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'cgroup', 'mount'];
const tail = (s: string) => (s.length > 400 ? `…${s.slice(-400)}` : s).trim();

/** Run one hook to completion; throws HookError on a non-zero exit, a signal, a timeout or a failed start. */
export async function runHook(h: HookSpec, state: string, field: string, place: HookPlace = { kind: 'runtime' }): Promise<void> {
  const timeoutMs = (h.timeout ?? 0) > 0 ? (h.timeout as number) * 1000 : undefined;
  if (place.kind === 'runtime') return runHostHook(h, state, field, timeoutMs);
  return runJoinedHook(h, state, field, timeoutMs, place);
}

function runHostHook(h: HookSpec, state: string, field: string, timeoutMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = h.args ?? [h.path];
    const env = Object.fromEntries((h.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const child = spawnProcess(h.path, args.slice(1), { argv0: args[0] ?? h.path, env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin?.on('error', () => {});
    child.stdin?.end(state);
    child.on('error', (e) => reject(new HookError(field, h.path, `could not start: ${e.message}`)));
    if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve();
      else if (signal === 'SIGKILL' && timeoutMs) reject(new HookError(field, h.path, `timed out after ${h.timeout} s`));
      else reject(new HookError(field, h.path, `${signal ? `was killed by ${signal}` : `exited with status ${code}`}${stderr ? `: ${tail(stderr)}` : ''}`));
    });
  });
}

async function runJoinedHook(h: HookSpec, state: string, field: string, timeoutMs: number | undefined, place: Extract<HookPlace, { kind: 'container' }>): Promise<void> {
  const types = new Set(place.namespaces);
  const plan = new SpawnPlan();
  const keep: Record<string, number> = {};
  const opened: number[] = [];
  const own = (t: string) => fs.statSync(`/proc/self/ns/${t}`).ino;
  try {
    for (const t of JOIN_ORDER) {
      if (!types.has(t)) continue;
      const p = `/proc/${place.pid}/ns/${NAMESPACE_PROC_NAMES[t]}`;
      if (t === 'user' && fs.statSync(p).ino === own('user')) continue;
      const fd = fs.openSync(p, O.RDONLY | O.CLOEXEC);
      opened.push(fd);
      keep[`ns:${t}`] = fd;
      plan.call('setns', [plan.keep(`ns:${t}`), NAMESPACE_FLAGS[t]], { field, label: `setns(${JSON.stringify(p)}, ${t})` });
    }
    let pidns: number | undefined;
    if (types.has('pid')) {
      pidns = fs.openSync(`/proc/${place.pid}/ns/pid`, O.RDONLY | O.CLOEXEC);
      opened.push(pidns);
    }
    plan.exec(h.path, h.args ?? [h.path], h.env ?? []);
    const [inR, inW] = openPipe();
    const [errR, errW] = openPipe();
    const nullFd = fs.openSync('/dev/null', O.WRONLY | O.CLOEXEC);
    opened.push(nullFd);
    const compiled = compilePlan(plan);
    let handle;
    try {
      handle = spawn(compiled, { stdio: [inR, nullFd, errW], keep, pidNamespaceFd: pidns, closeAfter: [inR, errW] });
    } finally {
      compiled.free();
    }
    const errStream = fs.createReadStream('', { fd: errR });
    let stderr = '';
    errStream.on('data', (d) => (stderr += d.toString()));
    errStream.on('error', () => {});
    // Taken now: a quick hook's stderr may close before its exit is reaped, and a late listener would wait forever.
    const errClosed = new Promise<void>((r) => errStream.once('close', () => r()));
    try {
      await handle.started;
    } catch (e) {
      fs.closeSync(inW);
      throw new HookError(field, h.path, `could not start: ${(e as Error).message}`);
    }
    try {
      fs.writeSync(inW, state);
    } catch (e) {
      // A hook may exit without reading its stdin (as Go's exec, which runc uses, the state is then just dropped).
      if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
    } finally {
      fs.closeSync(inW);
    }
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (timeoutMs) timer = setTimeout(() => ((timedOut = true), handle.kill(9)), timeoutMs);
    const st = await handle.exited;
    if (timer) clearTimeout(timer);
    await errClosed;
    if (timedOut) throw new HookError(field, h.path, `timed out after ${h.timeout} s`);
    if (st.code !== 0) throw new HookError(field, h.path, `${st.signal ? `was killed by signal ${st.signal}` : `exited with status ${st.code}`}${stderr ? `: ${tail(stderr)}` : ''}`);
  } finally {
    for (const fd of opened) fs.closeSync(fd);
  }
}
