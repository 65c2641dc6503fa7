/**
 * OOM events of a container's memory cgroup.
 *   - v1: an eventfd registered on memory.oom_control through cgroup.event_control
 *     ("<eventfd> <oom_control fd>"), watched on the event loop (koffi.node.poll); the kernel also signals
 *     the eventfd when the cgroup is removed, which is told apart by cgroup.event_control being gone.
 *   - v2: memory.events watched with fs.watch (inotify: cgroupfs sends IN_MODIFY on every change, measured
 *     on this kernel with cgroup.events), firing when its oom_kill counter rises.
 * Kill counts: the oom_kill line of memory.oom_control (v1) or memory.events (v2).
 */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, errnoDescription, readKey } from './files.js';
import { eventfd, readEventCounter, watchReadable } from './sys.js';
import { CgroupError } from '../../config/cgroup-error.js';

/** OOM kills so far in a v1 memory cgroup (memory.oom_control "oom_kill"). */
export function oomKillCountV1(memoryDir: string): number {
  return Number(readKey(memoryDir, 'memory.oom_control', 'oom_kill'));
}

/** OOM kills so far in a v2 cgroup (memory.events "oom_kill"). */
export function oomKillCountV2(dir: string): number {
  return Number(readKey(dir, 'memory.events', 'oom_kill'));
}

/** Watch a v1 memory cgroup for OOM events; returns the stop function. */
export function watchOomV1(memoryDir: string, onOom: () => void): () => void {
  const control = path.join(memoryDir, 'cgroup.event_control');
  const oomFile = path.join(memoryDir, 'memory.oom_control');
  const efd = eventfd();
  let ofd: number | undefined;
  try {
    ofd = fs.openSync(oomFile, 'r');
    const reg = fs.openSync(control, fs.constants.O_WRONLY);
    try {
      fs.writeSync(reg, `${efd} ${ofd}`);
    } finally {
      fs.closeSync(reg);
    }
  } catch (e) {
    fs.closeSync(efd);
    if (ofd !== undefined) fs.closeSync(ofd);
    throw new CgroupError(`watching OOM events: registering ${oomFile} in ${control}: ${errnoDescription(e)}`, control, 'memory', errnoCode(e));
  }
  fs.closeSync(ofd);
  let stopped = false;
  let stopPoll: (() => void) | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    stopPoll?.();
    fs.closeSync(efd);
  };
  stopPoll = watchReadable(efd, () => {
    if (stopped) return;
    const n = readEventCounter(efd);
    if (n === 0n) return;
    // The kernel signals the eventfd when the cgroup goes away too: that is not an OOM.
    if (!fs.existsSync(control)) {
      stop();
      return;
    }
    onOom();
  });
  return stop;
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
