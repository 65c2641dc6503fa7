/**
 * checkpoint and restore, with runc's flags. Both go through the container's machine (ContainerHost).
 * `restore` without -d waits for the restored container, deletes it and exits with its code, as `run` does.
 */
import type { ContainerHost } from '../actors/container-host.js';
import type { CriuFlags } from '../actors/verbs/criu-plan.js';
import { exitCodeOf, openPidfd, waitPidfd } from '../kernel/index.js';
import { type FlagSpec, type ParsedArgs, UsageError, bool, parseArgs, str } from './args.js';

const CRIU_FLAGS: FlagSpec[] = [
  { name: 'image-path' },
  { name: 'work-path' },
  { name: 'tcp-established', bool: true },
  { name: 'ext-unix-sk', bool: true },
  { name: 'shell-job', bool: true },
  { name: 'file-locks', bool: true },
  { name: 'manage-cgroups-mode' },
  { name: 'empty-ns', multi: true },
  { name: 'auto-dedup', bool: true },
];

const CHECKPOINT_FLAGS: FlagSpec[] = [...CRIU_FLAGS, { name: 'leave-running', bool: true }];

const RESTORE_FLAGS: FlagSpec[] = [
  ...CRIU_FLAGS,
  { name: 'bundle', short: ['b'] },
  { name: 'detach', short: ['d'], bool: true },
  { name: 'pid-file' },
  { name: 'console-socket' },
  { name: 'no-pivot', bool: true },
  { name: 'no-subreaper', bool: true },
];

function criuFlags(p: ParsedArgs): CriuFlags {
  const emptyNs = Array.isArray(p.flags['empty-ns']) ? (p.flags['empty-ns'] as string[]) : [];
  return {
    imagePath: str(p, 'image-path'),
    workPath: str(p, 'work-path'),
    tcpEstablished: bool(p, 'tcp-established'),
    extUnixSk: bool(p, 'ext-unix-sk'),
    shellJob: bool(p, 'shell-job'),
    fileLocks: bool(p, 'file-locks'),
    manageCgroupsMode: str(p, 'manage-cgroups-mode'),
    ...(emptyNs.length ? { emptyNs } : {}),
    autoDedup: bool(p, 'auto-dedup'),
  };
}

function oneId(p: ParsedArgs, verb: string): string {
  if (p.args.length !== 1) throw new UsageError(`${verb}: expected exactly one container ID`);
  return p.args[0];
}

/** The checkpoint or restore verb; undefined for any other verb. */
export async function criuVerb(verb: string, rest: string[], root: string, withHost: <T>(root: string, f: (h: ContainerHost) => Promise<T>) => Promise<T>): Promise<number | undefined> {
  if (verb === 'checkpoint') {
    const p = parseArgs(rest, CHECKPOINT_FLAGS);
    const id = oneId(p, 'checkpoint');
    await withHost(root, (h) => h.checkpoint(id, { ...criuFlags(p), leaveRunning: bool(p, 'leave-running') }));
    return 0;
  }
  if (verb !== 'restore') return undefined;
  const p = parseArgs(rest, RESTORE_FLAGS);
  const id = oneId(p, 'restore');
  // Flags runc has that cordon cannot honour are refused, not ignored.
  if (str(p, 'console-socket') !== undefined) throw new UsageError('restore: --console-socket: cordon cannot restore a container with a terminal');
  if (bool(p, 'no-pivot')) throw new UsageError('restore: --no-pivot: CRIU sets up the restored root itself; cordon cannot restore without pivot_root');
  if (bool(p, 'no-subreaper')) throw new UsageError('restore: --no-subreaper: cordon does not make itself a subreaper, there is nothing to turn off');
  const detach = bool(p, 'detach');
  return withHost(root, async (h) => {
    const r = await h.restore(id, { ...criuFlags(p), bundle: str(p, 'bundle'), pidFile: str(p, 'pid-file') });
    if (detach) return 0;
    // Foreground: the restored init is this process's child (CRIU restores it as criu's sibling): its code is known.
    let st;
    try {
      st = await waitPidfd(openPidfd(r.pid));
    } catch {
      st = null; // gone already (and reaped by someone else)
    }
    const { recordInitExit } = await import('../actors/verbs/watch.js');
    if (st) await recordInitExit(h, id, st, r.pid);
    await h.destroy(id, { force: true });
    return st ? exitCodeOf(st) : 255;
  });
}
