/**
 * Reading an OCI bundle: `bundleDir/config.json` parsed (with line/column syntax errors and exact
 * 64-bit integers), validated in full and converted to the ContainerSetup the kernel layer builds from.
 */
import { realpathSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerSetup } from './model.js';
import { ConfigError } from './config-error.js';
import { parseConfigJson } from './config-json.js';
import type { OciHooks, OciSpec } from './oci-spec.js';
import { validateSpec, type ValidateOptions } from './validate.js';

/** Options of {@link loadBundle}. */
export interface LoadBundleOptions {
  /** Enter the rootfs with MS_MOVE + chroot instead of pivot_root (runc --no-pivot). Default false. */
  noPivotRoot?: boolean;
  /** Whether a seccomp syscall name exists; see {@link ValidateOptions.knownSyscall}. Default: names are kept unchecked. */
  knownSyscall?: (name: string) => boolean;
  /**
   * The parsed config.json to use instead of reading `bundleDir/config.json`: a door that read and checked it
   * (the command policy) passes that very object, so what was checked is what is created. Default: read the file.
   */
  spec?: unknown;
}

/** A bundle that was read and validated. */
export interface LoadedBundle {
  /** Absolute, symlink-free bundle directory. */
  bundle: string;
  /** The parsed, validated config.json (integers beyond 2^53 are bigints). */
  spec: OciSpec;
  /** What the kernel layer needs to create the container. */
  setup: ContainerSetup;
  /** `hooks` as given ({} when absent). */
  hooks: OciHooks;
  /** `annotations` ({} when absent). */
  annotations: Record<string, string>;
  /** Accepted-with-a-warning notes, each `path: message`. */
  warnings: string[];
}

/** The result of {@link specToSetup}. */
export interface SpecConversion {
  /** The validated config, as given. */
  spec: OciSpec;
  /** What the kernel layer needs to create the container. */
  setup: ContainerSetup;
  /** `hooks` as given ({} when absent). */
  hooks: OciHooks;
  /** `annotations` ({} when absent). */
  annotations: Record<string, string>;
  /** Accepted-with-a-warning notes, each `path: message`. */
  warnings: string[];
}

function realBundleDir(bundleDir: string): string {
  const abs = path.resolve(bundleDir);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

/**
 * The text of `bundleDir/config.json`; a missing or unreadable file is a {@link ConfigError}.
 *
 * @param bundleDir - an absolute bundle directory
 */
export async function readConfigJson(bundleDir: string): Promise<string> {
  const file = path.join(bundleDir, 'config.json');
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' || code === 'ENOTDIR' ? `no such file in bundle ${bundleDir}` : `cannot read ${file}: ${(e as Error).message}`;
    throw new ConfigError([{ path: 'config.json', message }]);
  }
}

/**
 * Validate a parsed config.json and convert it, without reading config.json itself (the rootfs, bind
 * sources and namespace paths are still checked on disk, synchronously).
 *
 * @param spec - the parsed config.json
 * @param bundleDir - the bundle directory (relative paths in the config resolve against it)
 * @param opts - noPivotRoot, the seccomp syscall resolver (knownSyscall), and host facts for tests (capLastCap,
 *   selinuxEnabled, apparmorEnabled)
 * @throws ConfigError listing every problem
 */
export function specToSetup(spec: unknown, bundleDir: string, opts: ValidateOptions = {}): SpecConversion {
  const v = validateSpec(spec, realBundleDir(bundleDir), opts);
  return { spec: v.spec, setup: v.setup, hooks: v.hooks, annotations: v.annotations, warnings: v.warnings };
}

/**
 * Read and validate `bundleDir/config.json`. A missing file, a syntax error (reported by line and
 * column) or any invalid field rejects the bundle with a {@link ConfigError} listing every problem.
 *
 * @param bundleDir - the bundle directory, absolute or relative to the current directory
 * @param opts - `noPivotRoot` (default false), `knownSyscall` (default: seccomp syscall names unchecked) and
 *   `spec` (the parsed config.json, already read; default: read the file)
 */
export async function loadBundle(bundleDir: string, opts: LoadBundleOptions = {}): Promise<LoadedBundle> {
  const abs = path.resolve(bundleDir);
  const raw = opts.spec !== undefined ? opts.spec : parseConfigJson(await readConfigJson(abs));
  const bundle = await realpath(abs).catch(() => abs);
  const v = validateSpec(raw, bundle, { noPivotRoot: opts.noPivotRoot ?? false, knownSyscall: opts.knownSyscall });
  return { bundle, spec: v.spec, setup: v.setup, hooks: v.hooks, annotations: v.annotations, warnings: v.warnings };
}
