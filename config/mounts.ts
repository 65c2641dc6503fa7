/**
 * `mounts[]` to MountSetup: options split as runc does, binds normalised to type "" + MS_BIND with the
 * source resolved against the bundle and stat'ed, destinations made absolute and normalised.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { MS } from './linux/mount-flags.js';
import type { MountSetup } from './model.js';
import { describeValue, missing, readArray, readObject, readString, readStringArray } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';
import { parseMountOptions } from './mount-options.js';

/**
 * Normalise a mount destination: join with "/" (a relative destination is taken relative to the
 * container root, as runc does for spec 1.0 configs) and collapse "." and ".." so it cannot escape "/".
 */
export function normaliseDestination(destination: string): string {
  const p = path.posix.join('/', destination);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Whether a stat error means "not there" (rather than, say, permission denied). */
function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Convert and check `mounts`. Relative destinations are accepted with a warning (deprecated, runc's
 * behaviour); missing bind sources, empty destinations, unsupported options and bind mounts carrying
 * filesystem data are errors naming the field.
 *
 * @param issues - where errors and warnings go
 * @param raw - the `mounts` value from config.json
 * @param bundleDir - absolute bundle directory (bind sources are relative to it)
 */
export function convertMounts(issues: Issues, raw: unknown, bundleDir: string): MountSetup[] {
  const list = readArray(issues, 'mounts', raw);
  if (list === undefined) return [];
  const out: MountSetup[] = [];
  list.forEach((entry, i) => {
    const p = indexPath('mounts', i);
    if (entry === null || entry === undefined) {
      issues.error(p, `expected an object, got ${describeValue(entry)}`);
      return;
    }
    const m = readObject(issues, p, entry);
    if (m === undefined) return;
    const before = issues.errorCount;
    const mount = convertMount(issues, p, m, bundleDir);
    if (mount !== undefined && issues.errorCount === before) out.push(mount);
  });
  return out;
}

function convertMount(issues: Issues, p: string, m: Record<string, unknown>, bundleDir: string): MountSetup | undefined {
  const destPath = childPath(p, 'destination');
  const rawDest = readString(issues, destPath, m.destination);
  let destination: string | undefined;
  if (m.destination === undefined || m.destination === null) missing(issues, destPath);
  else if (rawDest === '') issues.error(destPath, 'must be an absolute path, got ""');
  else if (rawDest !== undefined) {
    destination = normaliseDestination(rawDest);
    if (!rawDest.startsWith('/')) {
      issues.warn(destPath, `relative destination ${JSON.stringify(rawDest)} is deprecated; using ${JSON.stringify(destination)} (relative to "/")`);
    }
  }

  const type = readString(issues, childPath(p, 'type'), m.type) ?? '';
  let source = readString(issues, childPath(p, 'source'), m.source) ?? '';
  const options = readStringArray(issues, childPath(p, 'options'), m.options) ?? [];
  for (const key of ['uidMappings', 'gidMappings'] as const) {
    if (m[key] !== undefined && m[key] !== null) issues.error(childPath(p, key), 'id-mapped mounts are not supported');
  }

  const parsed = parseMountOptions(options);
  for (const u of parsed.unsupported) issues.error(indexPath(childPath(p, 'options'), u.index), u.reason);

  let flags = parsed.flags;
  const isBind = type === 'bind' || (flags & MS.BIND) !== 0;
  let sourceIsFile: boolean | undefined;
  if (isBind) {
    flags |= MS.BIND;
    if (parsed.data !== '') {
      issues.error(childPath(p, 'options'), `bind mounts cannot have filesystem-specific options (${JSON.stringify(parsed.data)})`);
    }
    const sourcePath = childPath(p, 'source');
    if (source === '') {
      if (m.source === undefined || m.source === null) issues.error(sourcePath, 'required field is missing (a bind mount needs a source)');
      else issues.error(sourcePath, 'must not be empty for a bind mount');
    } else {
      source = path.resolve(bundleDir, source);
      try {
        sourceIsFile = !statSync(source).isDirectory();
      } catch (e) {
        if (isNotFound(e)) issues.error(sourcePath, `bind source ${JSON.stringify(source)} does not exist`);
        else issues.error(sourcePath, `cannot stat bind source ${JSON.stringify(source)}: ${(e as Error).message}`);
      }
    }
  } else if (type === '' && (flags & MS.REMOUNT) === 0) {
    issues.error(childPath(p, 'type'), 'required for a mount that is not a bind mount (a filesystem type such as "tmpfs")');
  }
  if (destination === undefined) return undefined;

  const setup: MountSetup = {
    destination,
    type: isBind ? '' : type,
    source,
    flags,
    clearedFlags: parsed.clearedFlags,
    propagationFlags: parsed.propagationFlags,
    data: parsed.data,
  };
  if (sourceIsFile !== undefined) setup.sourceIsFile = sourceIsFile;
  return setup;
}

