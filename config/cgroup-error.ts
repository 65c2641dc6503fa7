/**
 * CgroupError: a cgroup problem named by the resource and the file (or the linux.cgroupsPath value). Thrown by
 * the kernel layer's cgroup manager and by parseCgroupsPath, which config/ validates linux.cgroupsPath with.
 */

/** An error writing or reading a cgroup file: names the resource and the file. */
export class CgroupError extends Error {
  readonly file: string;
  readonly resource?: string;
  readonly code?: string;

  constructor(message: string, file: string, resource?: string, code?: string) {
    super(message);
    this.name = 'CgroupError';
    this.file = file;
    this.resource = resource;
    this.code = code;
  }
}
