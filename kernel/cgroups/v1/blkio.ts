/**
 * The cgroup v1 blkio controller: weights (CFQ's blkio.weight* or BFQ's blkio.bfq.weight*, as runc picks
 * them), leaf weights, and the four per-device throttles.
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import type { BlockDeviceValue, CgroupResources } from '../../../config/model.js';
import { hasFile, writeCgroupFile } from '../files.js';

const dev = (d: BlockDeviceValue) => `${d.major}:${d.minor}`;

/** Why a weight file can be missing from a blkio cgroup: the kernel has no scheduler that offers it. */
const NO_WEIGHTS = 'no CFQ or BFQ I/O scheduler is available';
const NO_LEAF_WEIGHTS = "leaf weights were CFQ's, removed in Linux 5.0";

/**
 * writeCgroupFile for a weight file, where a missing file means the host's kernel lacks the feature: runc
 * fails the same way ("open PATH: no such file or directory"), and the error adds that it is the host's
 * kernel that has no such file (`... (this host's kernel has neither blkio.weight nor blkio.bfq.weight: ...)`).
 */
function writeWeight(dir: string, file: string, value: string, resource: string, lacks: string, why: string): void {
  try {
    writeCgroupFile(dir, file, value, resource);
  } catch (e) {
    if (!(e instanceof CgroupError) || e.code !== 'ENOENT') throw e;
    throw new CgroupError(`${e.message} (this host's kernel has ${lacks}: ${why})`, e.file, e.resource, e.code);
  }
}

/**
 * blkio: weight files are blkio.weight (CFQ kernels) or else blkio.bfq.weight (BFQ), as runc picks them;
 * leaf weights only exist with CFQ, so asking for one on a BFQ kernel fails naming blkio.leaf_weight. A
 * kernel with neither scheduler has no weight file at all: a weight is refused (as runc refuses it), the
 * error saying the host's kernel has none.
 */
export function setBlkioV1(dir: string, r: CgroupResources): void {
  const b = r.blockIO ?? {};
  const cfq = hasFile(dir, 'blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (b.weight !== undefined && b.weight !== 0) writeWeight(dir, weightFile, String(b.weight), 'blockIO.weight', 'neither blkio.weight nor blkio.bfq.weight', NO_WEIGHTS);
  if (b.leafWeight !== undefined && b.leafWeight !== 0) writeWeight(dir, 'blkio.leaf_weight', String(b.leafWeight), 'blockIO.leafWeight', 'no blkio.leaf_weight', NO_LEAF_WEIGHTS);
  b.weightDevice?.forEach((d, i) => {
    if (d.weight !== undefined && d.weight !== 0) {
      writeWeight(dir, weightDeviceFile, `${dev(d)} ${d.weight}`, `blockIO.weightDevice[${i}].weight`, 'neither blkio.weight_device nor blkio.bfq.weight_device', NO_WEIGHTS);
    }
    if (d.leafWeight !== undefined && d.leafWeight !== 0) {
      writeWeight(dir, 'blkio.leaf_weight_device', `${dev(d)} ${d.leafWeight}`, `blockIO.weightDevice[${i}].leafWeight`, 'no blkio.leaf_weight_device', NO_LEAF_WEIGHTS);
    }
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
