/**
 * OCI `linux.cgroupsPath`, cleaned and checked as runc's cgroupfs driver reads it: absolute ("/a/b", under
 * each hierarchy's mount point), relative ("a/b", under the runtime's own cgroup), or empty (the container
 * id, relative); runc's systemd "slice:prefix:name" form is rejected (no systemd cgroup driver here), and so
 * is a path that climbs out of its base with ".." (runc silently clamps it). Pure: the kernel layer joins
 * the result with the host's cgroup layout (kernel/cgroups/cgroups-path.ts).
 */
import { CgroupError } from './cgroup-error.js';

/** A cleaned cgroupsPath: `inner` has no "." / ".." / empty segments; `absolute` tells which base it hangs under. */
export interface CgroupTarget {
  inner: string;
  absolute: boolean;
}

const FIELD = 'linux.cgroupsPath';

/**
 * Clean and check a cgroupsPath (empty → the container id). Throws a CgroupError for the systemd
 * "slice:prefix:name" form, for a path that climbs out of its base with "..", and for one that names the
 * base itself ("/" or "a/..").
 */
export function parseCgroupsPath(cgroupsPath: string | undefined, id: string): CgroupTarget {
  const raw = cgroupsPath ?? '';
  if (raw.includes('\0')) throw new CgroupError(`${FIELD}: must not contain a NUL byte`, raw, FIELD);
  if (raw === '') {
    if (id === '' || id.includes('/') || id === '.' || id === '..') {
      throw new CgroupError(`${FIELD}: the container id ${JSON.stringify(id)} cannot name a cgroup`, id, FIELD);
    }
    return { inner: id, absolute: false };
  }
  if (!raw.includes('/') && raw.split(':').length === 3) {
    throw new CgroupError(
      `${FIELD}: ${JSON.stringify(raw)} is in the systemd driver's "slice:prefix:name" form; the systemd cgroup driver is not supported (cordon manages cgroupfs directly)`,
      raw,
      FIELD,
    );
  }
  const absolute = raw.startsWith('/');
  const out: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) {
        throw new CgroupError(`${FIELD}: ${JSON.stringify(raw)} climbs out of ${absolute ? 'the cgroup hierarchy root' : "the runtime's own cgroup"} with ".."`, raw, FIELD);
      }
      out.pop();
      continue;
    }
    out.push(seg);
  }
  if (out.length === 0) {
    throw new CgroupError(`${FIELD}: ${JSON.stringify(raw)} names ${absolute ? 'the cgroup hierarchy root' : "the runtime's own cgroup"} itself; give the container a cgroup of its own`, raw, FIELD);
  }
  return { inner: out.join('/'), absolute };
}
