/**
 * `linux.devices` to DeviceSetup: device nodes to create in the container, with runc's defaults
 * (mode 0o666, owner 0:0) and the "u" type folded into "c".
 */
import type { DeviceSetup } from './model.js';
import { UINT32, checkAbsolute, describeValue, readArray, readInteger, readObject, readString, requireInteger } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';
import { normaliseDestination } from './mounts.js';

/** S_IFMT: file type bits, stripped from `fileMode` as runc does. */
const S_IFMT = 0o170000;
/** Largest major number a dev_t holds (12 bits). */
export const MAX_DEVICE_MAJOR = 0xfff;
/** Largest minor number a dev_t holds (20 bits). */
export const MAX_DEVICE_MINOR = 0xfffff;

/**
 * Convert `linux.devices`. Type is c, b, u (= c) or p; path absolute and unique; major and minor are
 * required for c/b/u (ignored for fifos); fileMode defaults to 0o666 (type bits stripped), uid/gid to 0.
 */
export function convertDevices(issues: Issues, raw: unknown): DeviceSetup[] {
  const base = 'linux.devices';
  const list = readArray(issues, base, raw) ?? [];
  const out: DeviceSetup[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    const p = indexPath(base, i);
    const o = readObject(issues, p, entry);
    if (o === undefined) {
      if (entry === null || entry === undefined) issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const before = issues.errorCount;
    const tp = childPath(p, 'type');
    const rawType = readString(issues, tp, o.type);
    let type: DeviceSetup['type'] | undefined;
    if (rawType === undefined) {
      if (o.type === undefined || o.type === null) issues.error(tp, 'required field is missing');
    } else if (rawType === 'c' || rawType === 'u') type = 'c';
    else if (rawType === 'b' || rawType === 'p') type = rawType;
    else issues.error(tp, `unknown device type ${JSON.stringify(rawType)} (expected c, b, u or p)`);

    const pp = childPath(p, 'path');
    const rawPath = readString(issues, pp, o.path);
    let devPath: string | undefined;
    if (rawPath === undefined) {
      if (o.path === undefined || o.path === null) issues.error(pp, 'required field is missing');
    } else if (checkAbsolute(issues, pp, rawPath)) {
      devPath = normaliseDestination(rawPath);
      const first = seen.get(devPath);
      if (first !== undefined) issues.error(pp, `duplicate device path ${JSON.stringify(devPath)} (already at ${indexPath(base, first)})`);
      else seen.set(devPath, i);
    }

    let major = 0;
    let minor = 0;
    if (type === 'p') {
      readInteger(issues, childPath(p, 'major'), o.major, { min: 0, max: MAX_DEVICE_MAJOR });
      readInteger(issues, childPath(p, 'minor'), o.minor, { min: 0, max: MAX_DEVICE_MINOR });
    } else {
      major = requireInteger(issues, childPath(p, 'major'), o.major, { min: 0, max: MAX_DEVICE_MAJOR }) ?? 0;
      minor = requireInteger(issues, childPath(p, 'minor'), o.minor, { min: 0, max: MAX_DEVICE_MINOR }) ?? 0;
    }
    const fileMode = readInteger(issues, childPath(p, 'fileMode'), o.fileMode, UINT32);
    const uid = readInteger(issues, childPath(p, 'uid'), o.uid, UINT32) ?? 0;
    const gid = readInteger(issues, childPath(p, 'gid'), o.gid, UINT32) ?? 0;
    if (issues.errorCount !== before || type === undefined || devPath === undefined) return;
    out.push({ path: devPath, type, major, minor, fileMode: fileMode === undefined ? 0o666 : fileMode & ~S_IFMT, uid, gid });
  });
  return out;
}
