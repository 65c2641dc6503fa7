/**
 * The cgroup v2 device controller: the rules compiled to an eBPF program (device-filter.ts) and attached to
 * the cgroup (bpf.ts), replacing whatever programs an earlier apply attached.
 */
import fs from 'node:fs';
import { CgroupError } from '../../../config/cgroup-error.js';
import type { DeviceRule } from '../../../config/model.js';
import { errnoCode, errnoDescription } from '../files.js';
import { attachDeviceProgram, BPF_F_ALLOW_MULTI, detachDeviceProgram, loadDeviceProgram, programFdById, queryDevicePrograms } from './bpf.js';
import { buildDeviceFilter, DEVICE_FILTER_LICENSE } from './device-filter.js';

/**
 * The device rules as an eBPF program attached to the cgroup (BPF_F_ALLOW_MULTI); programs attached before
 * (an earlier apply) are detached afterwards, so the rules are replaced, never stacked.
 */
export function setDevicesV2(dir: string, rules: readonly DeviceRule[]): void {
  const prog = buildDeviceFilter(rules);
  let dirFd: number;
  try {
    dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw new CgroupError(`devices: open ${dir}: ${errnoDescription(e)}`, dir, 'devices', errnoCode(e));
  }
  const fds: number[] = [];
  try {
    const oldFds = queryDevicePrograms(dirFd, dir).map((id) => programFdById(id));
    fds.push(...oldFds);
    const progFd = loadDeviceProgram(prog.bytes, DEVICE_FILTER_LICENSE);
    fds.push(progFd);
    attachDeviceProgram(dirFd, progFd, BPF_F_ALLOW_MULTI, dir);
    for (const fd of oldFds) detachDeviceProgram(dirFd, fd, dir);
  } catch (e) {
    if (e instanceof CgroupError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new CgroupError(`devices: ${msg}`, dir, 'devices', (e as { code?: string }).code);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    fs.closeSync(dirFd);
  }
}
