/**
 * `root`: the container's root filesystem, resolved against the bundle directory and checked to be an
 * existing directory that is not reached through a symlink (runc's rootfs rule).
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { readBoolean, requireObject, requireString } from './field-checks.js';
import type { Issues } from './issues.js';

/** The checked root filesystem. */
export interface RootfsSetup {
  /** Absolute host path. */
  path: string;
  readonly: boolean;
}

/**
 * Check `root` (required): `root.path` absolute or relative to `bundleDir`, an existing directory whose
 * path has no symlink in it; `root.readonly` a boolean.
 */
export function resolveRootfs(issues: Issues, raw: unknown, bundleDir: string): RootfsSetup | undefined {
  const root = requireObject(issues, 'root', raw);
  if (root === undefined) return undefined;
  const readonly = readBoolean(issues, 'root.readonly', root.readonly, false);
  const p = requireString(issues, 'root.path', root.path);
  if (p === undefined) return undefined;
  if (p === '') {
    issues.error('root.path', 'must not be empty');
    return undefined;
  }
  const abs = path.resolve(bundleDir, p);
  try {
    if (!statSync(abs).isDirectory()) {
      issues.error('root.path', `rootfs ${JSON.stringify(abs)} is not a directory`);
      return undefined;
    }
    const real = realpathSync(abs);
    if (real !== abs) {
      issues.error('root.path', `rootfs ${JSON.stringify(abs)} is reached through a symlink (it is ${JSON.stringify(real)}); give the real path`);
      return undefined;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') issues.error('root.path', `rootfs ${JSON.stringify(abs)} does not exist`);
    else issues.error('root.path', `cannot stat rootfs ${JSON.stringify(abs)}: ${(e as Error).message}`);
    return undefined;
  }
  return { path: abs, readonly };
}
