/**
 * The cgroup v2 io controller with runc 1.1's translations: io.weight from the blkio weight (or io.bfq.weight
 * as given when BFQ is there) and io.max per device.
 */
import type { BlockDeviceValue, CgroupResources } from '../../../config/model.js';
import { hasFile, readOptionalFile, writeCgroupFile } from '../files.js';

/** runc's ConvertBlkIOToIOWeightValue: [10, 1000] → [1, 10000]; 0 stays 0 (unset). */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** io.bfq.weight with per-device lines (kernel 5.4+) reads "default N" plus device lines, not a bare number. */
function bfqDeviceWeightSupported(dir: string): boolean {
  const t = readOptionalFile(dir, 'io.bfq.weight');
  return t !== undefined && !/^\s*\d+\s*$/.test(t);
}

const devKey = (d: BlockDeviceValue) => `${d.major}:${d.minor}`;

/**
 * io.weight (or io.bfq.weight, per device too where the kernel has it) and one io.max line per device with
 * every throttle it has, as runc's fs2 setIo.
 */
export function setIoV2(dir: string, b: NonNullable<CgroupResources['blockIO']>): void {
  const wantsWeight = (b.weight ?? 0) !== 0 || (b.weightDevice?.length ?? 0) > 0;
  const bfq = wantsWeight && hasFile(dir, 'io.bfq.weight');
  const bfqDevices = bfq && bfqDeviceWeightSupported(dir);
  if (b.weight !== undefined && b.weight !== 0) {
    if (bfq) writeCgroupFile(dir, 'io.bfq.weight', String(b.weight), 'blockIO.weight');
    else writeCgroupFile(dir, 'io.weight', String(blkioWeightToIoWeight(b.weight)), 'blockIO.weight');
  }
  if (bfqDevices) {
    b.weightDevice?.forEach((d, i) => {
      if (d.weight !== undefined && d.weight !== 0) writeCgroupFile(dir, 'io.bfq.weight', `${devKey(d)} ${d.weight}`, `blockIO.weightDevice[${i}]`);
    });
  }
  // One io.max line per device with every limit it has (the kernel keeps keys a line leaves out).
  const lines = new Map<string, string[]>();
  const add = (list: BlockDeviceValue[] | undefined, key: string) => {
    for (const d of list ?? []) {
      if (d.rate === undefined) continue;
      const k = devKey(d);
      if (!lines.has(k)) lines.set(k, []);
      lines.get(k)?.push(`${key}=${d.rate}`);
    }
  };
  add(b.throttleReadBpsDevice, 'rbps');
  add(b.throttleWriteBpsDevice, 'wbps');
  add(b.throttleReadIOPSDevice, 'riops');
  add(b.throttleWriteIOPSDevice, 'wiops');
  for (const [k, parts] of lines) writeCgroupFile(dir, 'io.max', `${k} ${parts.join(' ')}`, `blockIO throttle ${k}`);
}
