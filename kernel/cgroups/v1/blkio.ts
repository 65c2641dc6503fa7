/**
 * The cgroup v1 blkio controller: weights (CFQ's blkio.weight* or BFQ's blkio.bfq.weight*, as runc picks
 * them), leaf weights, and the four per-device throttles.
 */
import type { BlockDeviceValue, CgroupResources } from '../../../config/model.js';
import { hasFile, writeCgroupFile } from '../files.js';

const dev = (d: BlockDeviceValue) => `${d.major}:${d.minor}`;

/**
 * blkio: weight files are blkio.weight (CFQ kernels) or else blkio.bfq.weight (BFQ), as runc picks them;
 * leaf weights only exist with CFQ, so asking for one on a BFQ kernel fails naming blkio.leaf_weight.
 */
export function setBlkioV1(dir: string, r: CgroupResources): void {
  const b = r.blockIO ?? {};
  const cfq = hasFile(dir, 'blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (b.weight !== undefined && b.weight !== 0) writeCgroupFile(dir, weightFile, String(b.weight), 'blockIO.weight');
  if (b.leafWeight !== undefined && b.leafWeight !== 0) writeCgroupFile(dir, 'blkio.leaf_weight', String(b.leafWeight), 'blockIO.leafWeight');
  b.weightDevice?.forEach((d, i) => {
    if (d.weight !== undefined && d.weight !== 0) writeCgroupFile(dir, weightDeviceFile, `${dev(d)} ${d.weight}`, `blockIO.weightDevice[${i}].weight`);
    if (d.leafWeight !== undefined && d.leafWeight !== 0) writeCgroupFile(dir, 'blkio.leaf_weight_device', `${dev(d)} ${d.leafWeight}`, `blockIO.weightDevice[${i}].leafWeight`);
  });
  const throttles: Array<[BlockDeviceValue[] | undefined, string, string]> = [
    [b.throttleReadBpsDevice, 'blkio.throttle.read_bps_device', 'throttleReadBpsDevice'],
    [b.throttleWriteBpsDevice, 'blkio.throttle.write_bps_device', 'throttleWriteBpsDevice'],
    [b.throttleReadIOPSDevice, 'blkio.throttle.read_iops_device', 'throttleReadIOPSDevice'],
    [b.throttleWriteIOPSDevice, 'blkio.throttle.write_iops_device', 'throttleWriteIOPSDevice'],
  ];
  for (const [list, file, name] of throttles) {
    list?.forEach((d, i) => writeCgroupFile(dir, file, `${dev(d)} ${d.rate ?? 0n}`, `blockIO.${name}[${i}]`));
  }
}
