/**
 * The cgroup v1 devices controller: the rules through runc's emulator, as minimal devices.allow /
 * devices.deny transition writes from what devices.list shows, then a check that devices.list matches.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { DeviceRule } from '../../../config/model.js';
import { DeviceEmulator, DeviceRuleError, deviceRuleString } from '../device-rules.js';
import { readCgroupFile, writeCgroupFile } from '../files.js';

/** The device rules through runc's emulator: minimal transition writes, then a check of devices.list. */
export function setDevicesV1(dir: string, rules: readonly DeviceRule[]): void {
  let target: DeviceEmulator;
  let current: DeviceEmulator;
  try {
    target = DeviceEmulator.fromRules(rules);
    current = DeviceEmulator.fromList(readCgroupFile(dir, 'devices.list', 'devices'));
  } catch (e) {
    if (e instanceof DeviceRuleError) throw new CgroupError(`devices: ${e.message}`, `${dir}/devices.list`, 'devices');
    throw e;
  }
  for (const rule of current.transition(target)) {
    writeCgroupFile(dir, rule.allow ? 'devices.allow' : 'devices.deny', deviceRuleString(rule), 'devices');
  }
  const after = DeviceEmulator.fromList(readCgroupFile(dir, 'devices.list', 'devices'));
  if (!target.isBlacklist() && !after.equals(target)) {
    throw new CgroupError("devices: resulting devices cgroup doesn't precisely match target", `${dir}/devices.list`, 'devices');
  }
  if (target.isBlacklist() !== after.isBlacklist()) {
    throw new CgroupError("devices: resulting devices cgroup doesn't match target mode", `${dir}/devices.list`, 'devices');
  }
}
