/**
 * What checkpoint and restore share: their parameters (runc's flags), the CRIU options a container's config
 * leads to (bind mounts and masked files as external mounts, a network namespace joined by path as an
 * external namespace, cgroup roots), the CRIU layer (kernel/criu/, loaded when first needed), the images'
 * size, the container's stdio as runc keeps it (descriptors.json) and where its last images are
 * (checkpoint.json in its state dir, with a `checkpointed` marker while it has no process).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ContainerSetup } from '../../config/index.js';
import { LifecycleError } from '../../errors/index.js';
import { type CriuCgroupMode, type CriuCommonOptions, type CriuDumpOptions, type CriuRestoreOptions, type CriuRestoreResult, criuDump, criuRestore } from '../../kernel/index.js';
import { writeFileAtomic } from '../state-file.js';

/** The CRIU flags checkpoint and restore both take (runc's names, camelCased). */
export interface CriuFlags {
  /** Images directory (default: ./checkpoint in the caller's cwd, as runc; restore: where the last checkpoint wrote them). */
  imagePath?: string;
  /** CRIU's log and work files (default: the images directory). */
  workPath?: string;
  tcpEstablished?: boolean;
  extUnixSk?: boolean;
  shellJob?: boolean;
  fileLocks?: boolean;
  manageCgroupsMode?: string;
  /** Namespaces CRIU leaves out (runc --empty-ns; only `network` is accepted, as runc). */
  emptyNs?: string[];
  autoDedup?: boolean;
}

/** Parameters of checkpoint. */
export interface CheckpointParams extends CriuFlags {
  /** Keep it running after the dump. */
  leaveRunning?: boolean;
}

/** Parameters of restore. */
export interface RestoreParams extends CriuFlags {
  /** Bundle of a container restored under a new id (its config is read from there, as runc does). */
  bundle?: string;
  /** Write the restored init's host pid here. */
  pidFile?: string;
  /** Fds the restored tree gets for the stdio it had when dumped (default: this process's 0-2). */
  stdio?: readonly number[];
}

/** What a checkpoint reports (and its fact carries). */
export interface CheckpointResult {
  imagePath: string;
  workPath: string;
  /** Bytes of the images written. */
  imagesBytes: number;
  durationMs: number;
  leaveRunning: boolean;
}

/** What a restore reports (and its fact carries). */
export interface RestoreResult {
  pid: number;
  imagePath: string;
  durationMs: number;
}

/** The CRIU layer's functions (kernel/criu/, through kernel/index.js). */
interface CriuLayer {
  criuDump(opts: CriuDumpOptions): Promise<void>;
  criuRestore(opts: CriuRestoreOptions): Promise<CriuRestoreResult>;
}

/** The CRIU layer (kernel/criu/ over CRIU's RPC). */
export async function criuLayer(): Promise<CriuLayer> {
  return { criuDump, criuRestore };
}

const CGROUP_MODES: readonly string[] = ['soft', 'full', 'strict', 'ignore'];
const MS_BIND = 0x1000;

/** Check the flags and make the options both verbs pass to CRIU (images directory resolved, not created). */
export function commonOptions(f: CriuFlags, imagePath: string): CriuCommonOptions {
  if (f.manageCgroupsMode !== undefined && !CGROUP_MODES.includes(f.manageCgroupsMode)) {
    throw new LifecycleError('BadRequest', `--manage-cgroups-mode: ${JSON.stringify(f.manageCgroupsMode)} is not one of ${CGROUP_MODES.join(', ')}`, { field: 'manageCgroupsMode' });
  }
  for (const ns of f.emptyNs ?? []) {
    // runc: "Unknown or unsupported namespace" for anything but network.
    if (ns !== 'network') throw new LifecycleError('BadRequest', `--empty-ns: namespace ${JSON.stringify(ns)} is not supported (only "network", as runc)`, { field: 'emptyNs' });
  }
  return {
    imagesDir: imagePath,
    workDir: f.workPath ? path.resolve(f.workPath) : imagePath,
    ...(f.tcpEstablished ? { tcpEstablished: true } : {}),
    ...(f.extUnixSk ? { extUnixSk: true } : {}),
    ...(f.shellJob ? { shellJob: true } : {}),
    ...(f.fileLocks ? { fileLocks: true } : {}),
    ...(f.autoDedup ? { autoDedup: true } : {}),
    ...(f.manageCgroupsMode ? { manageCgroupsMode: f.manageCgroupsMode as CriuCgroupMode } : {}),
    ...(f.emptyNs?.length ? { emptyNs: [...f.emptyNs] } : {}),
  };
}

/** The bind mounts of a config (CRIU sees them as external mounts keyed by their destination, as runc maps them). */
export function bindMounts(setup: ContainerSetup): Array<{ destination: string; source: string }> {
  return setup.mounts.filter((m) => (m.flags & MS_BIND) !== 0).map((m) => ({ destination: m.destination, source: m.source }));
}

/** The masked paths that are files (/dev/null bound over them) in a running container, as runc's addMaskPaths finds them. */
export function maskedFiles(setup: ContainerSetup, pid: number): string[] {
  return setup.maskedPaths.filter((p) => {
    try {
      return !fs.statSync(path.join(`/proc/${pid}/root`, p)).isDirectory();
    } catch {
      return false; // absent: nothing was mounted there
    }
  });
}

/** The key CRIU knows a network namespace joined by path under (runc's criuNsToKey). */
export const NETNS_KEY = 'extRootNetNS';

/** A network namespace the config joins by path (not one the container made). */
export function joinedNetns(setup: ContainerSetup): string | undefined {
  return setup.namespaces.find((n) => n.type === 'network' && n.path)?.path;
}

const HYBRID = () => fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');

/** Cgroup roots for CRIU: each controller's directory relative to its hierarchy's mount (runc reads them from /proc/PID/cgroup). */
export function cgroupRoots(paths: Readonly<Record<string, string>>): Array<{ controller?: string; path: string }> {
  const out: Array<{ controller?: string; path: string }> = [];
  for (const [controller, dir] of Object.entries(paths)) {
    const rel = path.relative('/sys/fs/cgroup', dir);
    if (rel.startsWith('..')) continue;
    // The v2 hierarchy is mounted at /sys/fs/cgroup/unified on a hybrid host, at /sys/fs/cgroup on a v2 one.
    if (controller === 'unified') out.push({ path: '/' + (rel.startsWith('unified/') && HYBRID() ? rel.slice('unified/'.length) : rel) });
    else out.push({ controller, path: '/' + rel.split('/').slice(1).join('/') });
  }
  return out;
}

/** Total bytes of the files in a directory (its images). */
export function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile()) n += fs.statSync(p).size;
    else if (e.isDirectory()) n += dirBytes(p);
  }
  return n;
}

/** runc's descriptors.json: what the init's fds 0-2 were when it was dumped (paths, or pipe:[INODE] and the like). */
export const DESCRIPTORS = 'descriptors.json';

/** Save the init's stdio as runc does, so a restore can hand the same kinds of fds back. */
export function saveDescriptors(imagesDir: string, pid: number): void {
  const fds = [0, 1, 2].map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '/dev/null';
    }
  });
  writeFileAtomic(path.join(imagesDir, DESCRIPTORS), JSON.stringify(fds), 'checkpoint descriptors', 0o600);
}

/** The inherit_fd items for a restore: each dumped stdio that was not a file path (a pipe, a socket) gets the caller's fd. */
export function inheritedStdio(imagesDir: string, stdio: readonly number[] = [0, 1, 2]): Array<{ key: string; fd: number }> {
  const file = path.join(imagesDir, DESCRIPTORS);
  let fds: unknown;
  try {
    fds = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []; // images not made by cordon or runc: CRIU decides
    throw new LifecycleError('ConfigInvalid', `restore: ${file} is damaged: ${(e as Error).message}`, { field: 'imagePath' });
  }
  if (!Array.isArray(fds)) throw new LifecycleError('ConfigInvalid', `restore: ${file} is not a list of descriptors`, { field: 'imagePath' });
  const out: Array<{ key: string; fd: number }> = [];
  fds.forEach((d, i) => {
    if (typeof d === 'string' && !d.startsWith('/') && stdio[i] !== undefined) out.push({ key: d, fd: stdio[i] });
  });
  return out;
}

/** Where a container's last checkpoint put its images (checkpoint.json in its state dir). */
export interface CheckpointRecord {
  imagePath: string;
  workPath: string;
  time: string;
  leaveRunning: boolean;
}

const RECORD = 'checkpoint.json';
const MARKER = 'checkpointed';

/** Keep where the images are, in the container's state dir. */
export function writeCheckpointRecord(stateDir: string, r: CheckpointRecord): void {
  writeFileAtomic(path.join(stateDir, RECORD), JSON.stringify(r) + '\n', 'checkpoint record', 0o600);
}

/** Where the container's last checkpoint put its images, if it has one. */
export function readCheckpointRecord(stateDir: string): CheckpointRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(stateDir, RECORD), 'utf8')) as CheckpointRecord;
    return typeof r.imagePath === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Mark the state dir as checkpointed (no process: `state` and `list` answer as runc does for it). */
export function markCheckpointed(stateDir: string, on: boolean): void {
  const f = path.join(stateDir, MARKER);
  if (on) writeFileAtomic(f, '', 'checkpointed marker', 0o600);
  else fs.rmSync(f, { force: true });
}

/** Whether the state dir is marked checkpointed. */
export function isCheckpointed(stateDir: string): boolean {
  return fs.existsSync(path.join(stateDir, MARKER));
}

/** A directory of images a restore can read: it exists and holds CRIU's inventory. */
export function requireImages(imagePath: string): void {
  const inv = path.join(imagePath, 'inventory.img');
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(imagePath);
  } catch (e) {
    throw new LifecycleError('ConfigInvalid', `restore: image directory ${imagePath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { field: 'imagePath', errno: 2 });
  }
  if (!st.isDirectory()) throw new LifecycleError('ConfigInvalid', `restore: image path ${imagePath} is not a directory`, { field: 'imagePath' });
  if (!fs.existsSync(inv)) throw new LifecycleError('ConfigInvalid', `restore: ${imagePath} holds no CRIU images (no inventory.img)`, { field: 'imagePath' });
}
