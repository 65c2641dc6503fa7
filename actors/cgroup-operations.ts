/**
 * runc's cgroup verbs on a recorded container: pause/resume (freezer), ps (its pids), stats (cgroup
 * figures plus network counters), OOM watching, update of resources, kill --all. Each works from a
 * fresh process through the cgroup paths in state.json.
 */
import { openCgroupManager } from '../kernel/index.js';
import type { CgroupManager, CgroupResources, CgroupStats } from '../kernel/index.js';
import { type InterfaceStats, interfaceStats } from './runc-events.js';
import { type ContainerRecord, RuntimeError, type StateRoot } from './state-dir.js';

/** Statistics of a container: its cgroups and its network interfaces. */
export interface ContainerStats {
  cgroup: CgroupStats;
  interfaces: InterfaceStats[];
}

/** The cgroup manager of a recorded container. */
export function cgroupOf(rec: ContainerRecord): CgroupManager {
  if (!rec.cgroupPaths || Object.keys(rec.cgroupPaths).length === 0) throw new RuntimeError('bad-state', `container ${rec.id} has no cgroups recorded`);
  return openCgroupManager(rec.cgroupPaths, { created: rec.cgroupCreated });
}

/** Cgroup verbs over one state root. */
export class CgroupOperations {
  constructor(private readonly state: StateRoot) {}

  private running(id: string, verb: string): ContainerRecord {
    const rec = this.state.read(id);
    const status = this.state.status(rec);
    if (status === 'stopped') throw new RuntimeError('bad-state', `cannot ${verb} a container that has stopped`);
    return rec;
  }

  /** Freeze every process of a running container (status becomes "paused"). */
  async pause(id: string): Promise<void> {
    const rec = this.running(id, 'pause');
    const status = this.state.status(rec);
    if (status !== 'running') throw new RuntimeError('bad-state', `container not running (status ${status})`);
    await cgroupOf(rec).freeze();
  }

  /** Thaw a paused container. */
  async resume(id: string): Promise<void> {
    const rec = this.running(id, 'resume');
    const status = this.state.status(rec);
    if (status !== 'paused') throw new RuntimeError('bad-state', `container not paused (status ${status})`);
    await cgroupOf(rec).thaw();
  }

  /** Host pids of every process in the container. */
  pids(id: string): number[] {
    return cgroupOf(this.running(id, 'list processes of')).pids().sort((a, b) => a - b);
  }

  /** One statistics sample. */
  stats(id: string): ContainerStats {
    const rec = this.running(id, 'get stats of');
    return { cgroup: cgroupOf(rec).stats(), interfaces: interfaceStats(rec.pid) };
  }

  /** Number of OOM kills in the container so far. */
  oomKills(id: string): number {
    return cgroupOf(this.state.read(id)).oomKillCount();
  }

  /** Call `onOom` on each OOM event of the container; returns the unsubscribe function. */
  watchOom(id: string, onOom: () => void): () => void {
    return cgroupOf(this.running(id, 'watch')).watchOom(onOom);
  }

  /** Change the resources of a created, running or paused container. */
  update(id: string, resources: CgroupResources): void {
    cgroupOf(this.running(id, 'update')).apply(resources);
  }

  /** Send a signal to every process in the container (runc kill --all). */
  signalAll(id: string, signal: number): void {
    cgroupOf(this.running(id, 'signal')).signalAll(signal);
  }
}
