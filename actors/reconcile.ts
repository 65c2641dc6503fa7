/**
 * Before a machine is built from the log, the log is made to agree with the kernel (ARCHITECTURE.md,
 * "Recovery"): a container the log has live whose init is gone (same pid *and* start time, else gone) gets
 * its exit recorded, exit status unknown; one whose state dir was lost while its init lives (a fresh root
 * restored from JetStream) gets state.json and network.json written back from its `create` fact.
 */
import fs from 'node:fs';
import { isSameProcess, reapZombieChild } from '../kernel/index.js';
import type { LoggedState } from './event-recorder.js';
import type { NetworkRecord } from './network.js';
import type { ContainerRecord } from './state-dir.js';
import type { VerbContext } from './verbs/context.js';

/** What reconciling found for one container. */
export type Reconciled = 'adopted' | 'exited-while-down' | 'unchanged' | 'restored-record';

const LIVE = new Set(['created', 'running', 'paused']);

/** Make the log agree with the kernel for container `id`; returns where the log then has it and what was done. */
export async function reconcile(ctx: VerbContext, id: string): Promise<{ logged: LoggedState; found: Reconciled[] }> {
  const before = ctx.recorder.logged(id);
  if (!LIVE.has(before.state.value)) return { logged: before, found: ['unchanged'] };
  const found: Reconciled[] = [];
  let rec = ctx.state.read(id);
  if (!rec && (await restoreRecord(ctx, id))) {
    found.push('restored-record');
    rec = ctx.state.read(id);
  }
  const reaped = rec ? reapZombieChild(rec.pid, BigInt(rec.pidStartTime)) : null;
  if (reaped) {
    // Our own child, exited while nothing here followed it: reaped, so its status is known.
    await (await import('./verbs/watch.js')).recordInitExit(ctx, id, reaped);
    found.push('exited-while-down');
  } else if (rec && isSameProcess(rec.pid, BigInt(rec.pidStartTime))) found.push('adopted');
  else {
    await ctx.recorder.recordExit(id, { exitCode: null, signal: null, unknown: true, reason: rec ? 'gone while nothing watched it' : 'its state is gone' });
    found.push('exited-while-down');
  }
  return { logged: ctx.recorder.logged(id), found };
}

/**
 * A state dir lost (or a fresh root restored from JetStream) while the container's process lives on: write
 * its state.json back from the record its `create` fact carried, when that pid still is the same process.
 */
async function restoreRecord(ctx: VerbContext, id: string): Promise<boolean> {
  const fact = await ctx.recorder.createdAttributesOf(id);
  const rec = fact?.record as Record<string, unknown> | undefined;
  if (!rec || rec.id !== id || typeof rec.pid !== 'number' || typeof rec.pidStartTime !== 'string') return false;
  if (!isSameProcess(rec.pid, BigInt(rec.pidStartTime))) return false;
  const dir = ctx.state.dir(id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  // network.json first: delete tears down what it lists (CNI DEL frees the IPAM lease), state.json makes it visible.
  const net = fact?.networkRecord;
  if (net && typeof net === 'object' && Array.isArray((net as NetworkRecord).veth)) (await import('./network.js')).writeNetworkRecord(dir, net as NetworkRecord);
  ctx.state.write(rec as unknown as ContainerRecord);
  return true;
}
