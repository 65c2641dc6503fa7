/**
 * Creating and removing cgroup directories: mkdir -p that remembers what it created, and removal of a
 * container's cgroup (its sub-cgroups first, then the leaf, then the ancestors this runtime created),
 * retrying while the kernel still reports it busy (processes that are exiting keep a cgroup populated for
 * a moment).
 */
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, errnoDescription, sleep } from './files.js';
import { CgroupError } from '../../config/cgroup-error.js';

/** mkdir -p of `dir` below `base` (which must exist); returns the directories it created, parents first. */
export function mkdirTracked(base: string, dir: string): string[] {
  const rel = path.relative(base, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new CgroupError(`cgroup directory ${dir} is not below ${base}`, dir);
  const created: string[] = [];
  let cur = base;
  for (const seg of rel.split(path.sep).filter(Boolean)) {
    cur = path.join(cur, seg);
    try {
      fs.mkdirSync(cur, 0o755);
      created.push(cur);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw new CgroupError(`mkdir ${cur}: ${errnoDescription(e)}`, cur, undefined, errnoCode(e));
    }
  }
  return created;
}

/** rmdir every cgroup below `dir` (deepest first) and `dir` itself; ENOENT counts as removed. */
function removeTree(dir: string): void {
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
  }
  for (const e of entries) if (e.isDirectory()) removeTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * Remove each leaf directory (with any sub-cgroups), then walk up removing ancestors that are listed in
 * `created`. Retries busy directories with a doubling delay for about two seconds, then throws a
 * CgroupError naming every directory that stays.
 */
export async function removeCgroupDirs(leaves: readonly string[], created: readonly string[] = []): Promise<void> {
  const createdSet = new Set(created);
  const pending = new Set(leaves);
  let delay = 10;
  let lastError = new Map<string, unknown>();
  for (let attempt = 0; attempt < 9; attempt++) {
    if (attempt > 0) {
      await sleep(delay);
      delay *= 2;
    }
    lastError = new Map();
    for (const leaf of [...pending]) {
      try {
        removeTree(leaf);
        pending.delete(leaf);
      } catch (e) {
        lastError.set(leaf, e);
      }
    }
    if (pending.size === 0) break;
  }
  if (pending.size > 0) {
    const what = [...pending].map((d) => `${d} (${errnoDescription(lastError.get(d))})`).join(', ');
    throw new CgroupError(`unable to remove cgroup ${what}`, [...pending][0], undefined, errnoCode(lastError.get([...pending][0])));
  }
  // Ancestors this runtime created, deepest first; one still used by another container stays (ENOTEMPTY/EBUSY).
  const ancestors = [...createdSet].filter((d) => !leaves.includes(d)).sort((a, b) => b.length - a.length);
  for (const d of ancestors) {
    try {
      fs.rmdirSync(d);
    } catch {
      // Not empty (another cgroup below it) or already gone: leave it.
    }
  }
}
