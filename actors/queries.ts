/**
 * What a door may ask about containers without changing them: the OCI state (derived from the state dir
 * and /proc, as runc derives it, so every process sees the same answer), the list, the processes and one
 * statistics sample. A container that is not live is refused with the machine's code (ContainerNotRunning).
 */
import { LifecycleError } from '../errors/index.js';
import type { CgroupStats } from '../kernel/index.js';
import { type InterfaceStats, interfaceStats } from './runc-events.js';
import { OCI_VERSION, type OciState, type OciStatus, type StateRoot } from './state-dir.js';
import { type StateCorruptError, isDamagedState } from './state-file.js';
import { cgroupOf } from './verbs/cgroups.js';
import { isCheckpointed, readCheckpointRecord } from './verbs/criu-plan.js';
import { notRunning } from '../machines/commands.js';

/** Statistics of a container: its cgroups and its network interfaces. */
export interface ContainerStats {
  cgroup: CgroupStats;
  interfaces: InterfaceStats[];
}

/**
 * The OCI state of a container (ContainerNotExists when it has no state record). A checkpointed container has
 * no process: runc says it does not exist, and so does this, naming where its images are.
 */
export function ociStateOf(state: StateRoot, id: string): OciState {
  const rec = state.require(id);
  if (isCheckpointed(state.dir(id))) {
    const where = readCheckpointRecord(state.dir(id))?.imagePath;
    throw new LifecycleError('ContainerNotExists', `container does not exist: ${id} (it is checkpointed${where ? `, images in ${where}` : ''}; \`cordon restore ${id}\` brings it back, \`cordon delete ${id}\` forgets it)`);
  }
  return state.ociState(rec);
}

/** The OCI state, or for a checkpointed container its record with status `checkpointed` and pid 0 (the NATS state verb). */
export function ociStateOrCheckpointed(state: StateRoot, id: string): Omit<OciState, 'status'> & { status: OciStatus | 'checkpointed' } {
  const rec = state.require(id);
  return isCheckpointed(state.dir(id)) ? { ...state.ociState(rec), status: 'checkpointed', pid: 0 } : state.ociState(rec);
}

/**
 * A container as `list` shows it: its OCI state, or — its state.json damaged — status `unknown`, pid 0, empty
 * bundle and times, and `error` saying what is wrong with the file.
 */
export type ListedState = Omit<OciState, 'status'> & { status: OciStatus | 'unknown'; error?: string };

/**
 * OCI states of every container under the root (a create in progress, without state.json, is not listed: as
 * runc). One whose state.json is damaged is listed with status `unknown` and reported through `onDamaged`
 * (runc 1.1.5's list leaves it out without a word; cordon keeps it visible so that `delete --force` is found).
 */
export function listStates(state: StateRoot, onDamaged?: (e: StateCorruptError) => void): ListedState[] {
  const out: ListedState[] = [];
  for (const id of state.list()) {
    let rec;
    try {
      rec = state.read(id);
    } catch (e) {
      if (!isDamagedState(e)) throw e;
      onDamaged?.(e);
      out.push({ ociVersion: OCI_VERSION, id, pid: 0, status: 'unknown', bundle: '', rootfs: '', created: '', owner: '', error: e.message });
      continue;
    }
    // A checkpointed container is not listed, as runc (it has no process; `restore` brings it back).
    if (rec && !isCheckpointed(state.dir(id))) out.push(state.ociState(rec));
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
