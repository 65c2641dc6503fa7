/**
 * /proc/PID/mountinfo parsing: which mount holds a path, its per-mount flags (needed to remount without
 * dropping locked flags), and whether a path is still mounted (leak checks after delete).
 */
import fs from 'node:fs';
import { MS } from '../../config/linux/mount-flags.js';

/** One line of mountinfo. */
export interface MountInfo {
  id: number;
  parent: number;
  /** "major:minor" of the filesystem. */
  device: string;
  /** Root of the mount within its filesystem. */
  root: string;
  mountPoint: string;
  /** Per-mount options (ro, nosuid, nodev, noexec, relatime, ...). */
  options: string[];
  /** Optional fields such as shared:N, master:N. */
  optional: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parse mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      device: f[2],
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      options: f[5].split(','),
      optional: f.slice(6, sep),
      fsType: f[sep + 1],
      source: unescape(f[sep + 2]),
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

/** The mounts of a process (default: this one). */
export function readMountInfo(pid: number | 'self' = 'self'): MountInfo[] {
  return parseMountInfo(fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
}

const isUnder = (p: string, mp: string) => mp === '/' || p === mp || p.startsWith(mp + '/');

/** The mount that holds `absPath` (the last, i.e. topmost, of the longest matching mount points). */
export function mountContaining(absPath: string, mounts: MountInfo[] = readMountInfo()): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) if (isUnder(absPath, m.mountPoint) && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m;
  return best;
}

/** MS_* flags a remount must keep: those of the mount's per-mount options that the kernel may lock. */
export function lockedFlags(m: MountInfo): number {
  let f = 0;
  for (const o of m.options) {
    if (o === 'nosuid') f |= MS.NOSUID;
    else if (o === 'nodev') f |= MS.NODEV;
    else if (o === 'noexec') f |= MS.NOEXEC;
    else if (o === 'noatime') f |= MS.NOATIME;
    else if (o === 'nodiratime') f |= MS.NODIRATIME;
    else if (o === 'relatime') f |= MS.RELATIME;
    else if (o === 'ro') f |= MS.RDONLY;
  }
  return f;
}

/** True when the mount is a shared peer (propagates mount events). */
export function isShared(m: MountInfo): boolean {
  return m.optional.some((o) => o.startsWith('shared:'));
}

/** Mount points at or below `dir` in this process's mount namespace (for leak checks). */
export function mountsUnder(dir: string, mounts: MountInfo[] = readMountInfo()): string[] {
  return mounts.map((m) => m.mountPoint).filter((mp) => mp === dir || mp.startsWith(dir.endsWith('/') ? dir : dir + '/'));
}
