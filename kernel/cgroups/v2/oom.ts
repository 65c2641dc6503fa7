/**
 * OOM events of a cgroup v2 directory: memory.events watched with fs.watch (inotify: cgroupfs sends IN_MODIFY
 * on every change, measured on this kernel with cgroup.events), firing when its oom_kill counter rises; the
 * kill count is memory.events' oom_kill line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CgroupError } from '../../../config/cgroup-error.js';
import { errnoCode, errnoDescription, readKey } from '../files.js';

/** OOM kills so far in a v2 cgroup (memory.events "oom_kill"). */
export function oomKillCountV2(dir: string): number {
  return Number(readKey(dir, 'memory.events', 'oom_kill'));
}

/** Watch a v2 cgroup's memory.events for a rising oom_kill; returns the stop function. */
export function watchOomV2(dir: string, onOom: () => void): () => void {
  const file = path.join(dir, 'memory.events');
  let last = oomKillCountV2(dir);
  let watcher: fs.FSWatcher;
  try {
    watcher = fs.watch(file, { persistent: true });
  } catch (e) {
    throw new CgroupError(`watching OOM events: ${file}: ${errnoDescription(e)}`, file, 'memory', errnoCode(e));
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    watcher.close();
  };
  watcher.on('error', stop);
  watcher.on('change', () => {
    if (stopped) return;
    let now: number;
    try {
      now = oomKillCountV2(dir);
    } catch {
      stop();
      return;
    }
    for (; last < now; last++) onOom();
  });
  return stop;
}
