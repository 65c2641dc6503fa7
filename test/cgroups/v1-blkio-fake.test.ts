/**
 * The v1 blkio weights against fake cgroup directories of plain files, for the three kernels there are: CFQ
 * (blkio.weight*, leaf weights), BFQ (blkio.bfq.weight*) and neither (only blkio.throttle.*, as on a kernel
 * built without BFQ). Whatever this host has, each case runs here; test/cgroups/v1-host.test.ts checks the
 * real files of the host's own kind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupError } from '../../config/cgroup-error.js';
import type { CgroupResources } from '../../config/model.js';
import { setBlkioV1 } from '../../kernel/cgroups/v1/blkio.js';

const THROTTLES = ['blkio.throttle.read_bps_device', 'blkio.throttle.write_bps_device', 'blkio.throttle.read_iops_device', 'blkio.throttle.write_iops_device'];
const KERNELS = {
  cfq: [...THROTTLES, 'blkio.weight', 'blkio.weight_device', 'blkio.leaf_weight', 'blkio.leaf_weight_device'],
  bfq: [...THROTTLES, 'blkio.bfq.weight', 'blkio.bfq.weight_device'],
  none: THROTTLES,
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A blkio cgroup directory of `kind` with every file empty. */
function blkioDir(kind: keyof typeof KERNELS): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cordon-blkio-${kind}-`));
  dirs.push(dir);
  for (const f of KERNELS[kind]) fs.writeFileSync(path.join(dir, f), '');
  return dir;
}

/** Every non-empty file of `dir`, by name. */
function written(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const t = fs.readFileSync(path.join(dir, f), 'utf8');
    if (t !== '') out[f] = t;
  }
  return out;
}

function refusal(dir: string, r: CgroupResources): CgroupError {
  try {
    setBlkioV1(dir, r);
  } catch (e) {
    expect(e).toBeInstanceOf(CgroupError);
    return e as CgroupError;
  }
  throw new Error('expected a CgroupError');
}

const weights: CgroupResources = { blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1024n }] } };

describe('v1 blkio weights by the kernel\'s I/O schedulers', () => {
  it('CFQ: blkio.weight and blkio.weight_device, leaf weights too', () => {
    const dir = blkioDir('cfq');
    setBlkioV1(dir, { blockIO: { ...weights.blockIO, leafWeight: 200, weightDevice: [{ major: 8, minor: 0, weight: 300, leafWeight: 100 }] } });
    expect(written(dir)).toEqual({
      'blkio.leaf_weight': '200',
      'blkio.leaf_weight_device': '8:0 100',
      'blkio.throttle.read_bps_device': '8:0 1024',
      'blkio.weight': '500',
      'blkio.weight_device': '8:0 300',
    });
  });

  it('BFQ: blkio.bfq.weight and blkio.bfq.weight_device; a leaf weight is refused, the host lacking it', () => {
    const dir = blkioDir('bfq');
    setBlkioV1(dir, weights);
    expect(written(dir)).toEqual({ 'blkio.bfq.weight': '500', 'blkio.bfq.weight_device': '8:0 300', 'blkio.throttle.read_bps_device': '8:0 1024' });
    const leaf = refusal(dir, { blockIO: { leafWeight: 200 } });
    expect(leaf.message).toBe(`blockIO.leafWeight: open ${dir}/blkio.leaf_weight: no such file or directory (this host's kernel has no blkio.leaf_weight: leaf weights were CFQ's, removed in Linux 5.0)`);
    expect([leaf.resource, leaf.file, leaf.code]).toEqual(['blockIO.leafWeight', `${dir}/blkio.leaf_weight`, 'ENOENT']);
    expect(refusal(dir, { blockIO: { weightDevice: [{ major: 8, minor: 0, leafWeight: 100 }] } }).message).toBe(
      `blockIO.weightDevice[0].leafWeight: open ${dir}/blkio.leaf_weight_device: no such file or directory (this host's kernel has no blkio.leaf_weight_device: leaf weights were CFQ's, removed in Linux 5.0)`,
    );
  });

  it('neither (no BFQ built in): a weight is refused naming the file runc opens and saying the host has none; throttles still apply', () => {
    const dir = blkioDir('none');
    const w = refusal(dir, { blockIO: { weight: 500 } });
    expect(w.message).toBe(`blockIO.weight: open ${dir}/blkio.bfq.weight: no such file or directory (this host's kernel has neither blkio.weight nor blkio.bfq.weight: no CFQ or BFQ I/O scheduler is available)`);
    expect([w.resource, w.file, w.code]).toEqual(['blockIO.weight', `${dir}/blkio.bfq.weight`, 'ENOENT']);
    expect(refusal(dir, { blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 300 }] } }).message).toBe(
      `blockIO.weightDevice[0].weight: open ${dir}/blkio.bfq.weight_device: no such file or directory (this host's kernel has neither blkio.weight_device nor blkio.bfq.weight_device: no CFQ or BFQ I/O scheduler is available)`,
    );
    expect(fs.readdirSync(dir).sort()).toEqual([...THROTTLES].sort()); // nothing created
    // A weight of 0 means "unset" (as in runc): nothing to refuse.
    setBlkioV1(dir, { blockIO: { weight: 0, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1024n }] } });
    expect(written(dir)).toEqual({ 'blkio.throttle.read_bps_device': '8:0 1024' });
  });

  it('a weight file that fails to open for another reason keeps runc\'s wording, with no claim about the host', () => {
    const dir = blkioDir('bfq');
    fs.rmSync(path.join(dir, 'blkio.bfq.weight'));
    fs.mkdirSync(path.join(dir, 'blkio.bfq.weight')); // open(O_WRONLY) of a directory: EISDIR, not ENOENT
    expect(refusal(dir, { blockIO: { weight: 500 } }).message).toBe(`blockIO.weight: open ${dir}/blkio.bfq.weight: illegal operation on a directory`);
  });
});
