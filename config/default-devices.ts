/**
 * The device nodes runc creates in every container on top of `linux.devices` (specconv's AllowedDevices
 * with a path, in its order). config/ does not add them to ContainerSetup.devices; the kernel layer makes
 * them in every container's /dev (kernel/rootfs/dev.ts), a `linux.devices` entry with the same path winning
 * as runc does.
 */
import type { DeviceSetup } from './model.js';

const charDevice = (path: string, major: number, minor: number): DeviceSetup =>
  Object.freeze({ path, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 });

/** /dev/null, /dev/random, /dev/full, /dev/tty, /dev/zero, /dev/urandom: mode 0o666, owned by root. */
export const RUNC_DEFAULT_DEVICES: readonly DeviceSetup[] = Object.freeze([
  charDevice('/dev/null', 1, 3),
  charDevice('/dev/random', 1, 8),
  charDevice('/dev/full', 1, 7),
  charDevice('/dev/tty', 5, 0),
  charDevice('/dev/zero', 1, 5),
  charDevice('/dev/urandom', 1, 9),
]);

/** `devices` plus those of {@link RUNC_DEFAULT_DEVICES} whose path `devices` does not already have (runc's merge). */
export function withRuncDefaultDevices(devices: readonly DeviceSetup[]): DeviceSetup[] {
  const paths = new Set(devices.map((d) => d.path));
  return [...RUNC_DEFAULT_DEVICES.filter((d) => !paths.has(d.path)).map((d) => ({ ...d })), ...devices];
}
