/**
 * OCI `linux.resources.unified` on cgroup v2: each key a plain file name of the cgroup directory, written as
 * given; a failed write is explained (not CONTROLLER.PARAMETER, or a controller that is not available).
 */
import { CgroupError } from '../../../config/cgroup-error.js';
import { writeCgroupFile } from '../files.js';

/** `unified`: each key a plain file name of the cgroup directory, written as given. */
export function setUnified(dir: string, unified: Readonly<Record<string, string>>, avail: Set<string>): void {
  for (const [k, v] of Object.entries(unified)) {
    const res = `unified[${JSON.stringify(k)}]`;
    if (k === '' || k === '.' || k === '..' || k.includes('/') || k.includes('\0')) {
      throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} must be a file name (no slashes)`, k, res, 'EINVAL');
    }
    try {
      writeCgroupFile(dir, k, v, res);
    } catch (e) {
      if (e instanceof CgroupError && (e.code === 'ENOENT' || e.code === 'EPERM' || e.code === 'EACCES')) {
        const dot = k.indexOf('.');
        if (dot <= 0) throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} must be in the form CONTROLLER.PARAMETER`, `${dir}/${k}`, res, e.code);
        const ctrl = k.slice(0, dot);
        if (ctrl !== 'cgroup' && !avail.has(ctrl)) {
          throw new CgroupError(`${res}: unified resource ${JSON.stringify(k)} can't be set: controller ${JSON.stringify(ctrl)} not available`, `${dir}/${k}`, res, e.code);
        }
      }
      throw e;
    }
  }
}
