/**
 * OOM events of a cgroup v1 memory cgroup: an eventfd registered on memory.oom_control through
 * cgroup.event_control ("<eventfd> <oom_control fd>"), watched on the event loop (koffi's poll); the kernel
 * also signals the eventfd when the cgroup is removed, which is told apart by cgroup.event_control being
 * gone. The kill count is memory.oom_control's oom_kill line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, errnoDescription, readKey } from '../files.js';
import { watchReadable } from '../../io/fd.js';
import { eventfd, readEventCounter } from './eventfd.js';
import { CgroupError } from '../../../config/cgroup-error.js';

/** OOM kills so far in a v1 memory cgroup (memory.oom_control "oom_kill"). */
export function oomKillCountV1(memoryDir: string): number {
  return Number(readKey(memoryDir, 'memory.oom_control', 'oom_kill'));
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
  let poll: { close(): void } | undefined;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    poll?.close();
    fs.closeSync(efd);
  };
  poll = watchReadable(efd, () => {
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
