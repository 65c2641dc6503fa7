/**
 * Parent-side path resolution inside a rootfs, the way the container will see it: symlinks are followed
 * but confined to the root (securejoin semantics). Used for pre-checks and the executable lookup; the
 * child re-resolves every mount target with openat2(RESOLVE_IN_ROOT), which is the real enforcement.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A symlink met while resolving, with how it reads. */
export interface SymlinkHop {
  /** Container path of the link. */
  link: string;
  target: string;
  /** True when a relative target climbs above the root ("../../.."), i.e. would point outside on the host. */
  escapes: boolean;
}

/** Result of resolving a container path against a rootfs on the host. */
export interface RootPath {
  /** Host path (inside the rootfs) the container path resolves to. */
  hostPath: string;
  /** Container path after resolution. */
  containerPath: string;
  /** Symlinks that were followed. */
  hops: SymlinkHop[];
  /** True when the resolved path exists. */
  exists: boolean;
}

/** Resolve `containerPath` inside `rootfs`, following symlinks as the container would (never above the root). */
export function resolveInRoot(rootfs: string, containerPath: string): RootPath {
  const hops: SymlinkHop[] = [];
  let pending = containerPath.split('/').filter(Boolean);
  const done: string[] = [];
  let budget = 255;
  let exists = true;
  while (pending.length) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const cpath = '/' + [...done, part].join('/');
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(path.join(rootfs, cpath));
    } catch {
      exists = false;
    }
    if (st?.isSymbolicLink()) {
      if (--budget < 0) throw new Error(`too many levels of symbolic links in ${containerPath}`);
      const target = fs.readlinkSync(path.join(rootfs, cpath));
      let depth = target.startsWith('/') ? 0 : done.length;
      let escapes = false;
      for (const t of target.split('/').filter(Boolean)) {
        if (t === '..') {
          if (--depth < 0) escapes = true;
        } else if (t !== '.') depth++;
      }
      hops.push({ link: cpath, target, escapes });
      if (target.startsWith('/')) done.length = 0;
      pending = [...target.split('/').filter(Boolean), ...pending];
      continue;
    }
    done.push(part);
    if (!st) {
      // The rest does not exist: keep it lexically.
      for (const p of pending) if (p === '..') done.pop(); else if (p !== '.') done.push(p);
      pending = [];
    }
  }
  const cp = '/' + done.join('/');
  return { hostPath: path.join(rootfs, cp), containerPath: cp, hops, exists };
}

/**
 * Find args[0] the way execvp would inside the container (PATH from the process env, runc's default
 * otherwise). Returns the container path, or undefined when it is found nowhere.
 */
export function findExecutable(rootfs: string, arg0: string, env: readonly string[], extraRoots: Array<{ dest: string; source: string }> = []): string | undefined {
  if (arg0.includes('/')) return arg0;
  const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const dir of pathVar.split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = path.posix.join(dir, arg0);
    if (isExecutableIn(rootfs, candidate, extraRoots)) return candidate;
  }
  return undefined;
}

function isExecutableIn(rootfs: string, cpath: string, binds: Array<{ dest: string; source: string }>): boolean {
  for (const b of binds) {
    if (cpath === b.dest || cpath.startsWith(b.dest + '/')) {
      return isExecutableFile(path.join(b.source, cpath.slice(b.dest.length)));
    }
  }
  const r = resolveInRoot(rootfs, cpath);
  return r.exists && isExecutableFile(r.hostPath);
}

function isExecutableFile(p: string): boolean {
  try {
    const st = fs.statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}
