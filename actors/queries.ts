/**
 * What a door may ask about containers without changing them: the OCI state (derived from the state dir
 * and /proc, as runc derives it, so every process sees the same answer), the list, the processes and one
 * statistics sample. A container that is not live is refused with the machine's code (ContainerNotRunning).
 */
import { LifecycleError } from '../errors/index.js';
import type { CgroupStats } from '../kernel/index.js';
import { type InterfaceStats, interfaceStats } from './runc-events.js';
import type { OciState, StateRoot } from './state-dir.js';
import { cgroupOf } from './verbs/cgroups.js';
import { notRunning } from '../machines/commands.js';

/** Statistics of a container: its cgroups and its network interfaces. */
export interface ContainerStats {
  cgroup: CgroupStats;
  interfaces: InterfaceStats[];
}

/** The OCI state of a container (ContainerNotExists when it has no state record). */
export function ociStateOf(state: StateRoot, id: string): OciState {
  return state.ociState(state.require(id));
}

/** OCI states of every container under the root (a create in progress, without state.json, is not listed: as runc). */
export function listStates(state: StateRoot): OciState[] {
  const out: OciState[] = [];
  for (const id of state.list()) {
    const rec = state.read(id);
    if (rec) out.push(state.ociState(rec));
  }
  return out;
}

function live(state: StateRoot, id: string, what: string) {
  const rec = state.require(id);
  const status = state.status(rec);
  if (status === 'stopped') throw notRunning(id, 'stopped', what);
  return rec;
}

/** Host pids of every process in a live container. */
export function containerPids(state: StateRoot, id: string): number[] {
  return cgroupOf(live(state, id, 'list processes of')).pids().sort((a, b) => a - b);
}

/** One statistics sample of a live container. */
export function containerStats(state: StateRoot, id: string): ContainerStats {
  const rec = live(state, id, 'get stats of');
  return { cgroup: cgroupOf(rec).stats(), interfaces: interfaceStats(rec.pid) };
}

/** Call `onOom` on each OOM event of a live container; returns the unsubscribe function. */
export function watchContainerOom(state: StateRoot, id: string, onOom: () => void): () => void {
  return cgroupOf(live(state, id, 'watch')).watchOom(onOom);
}
