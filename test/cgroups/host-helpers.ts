/**
 * Helpers for the cgroup tests that run on this host's real hierarchies: unique names, processes that
 * wait for a go signal on stdin (so they can be moved into a cgroup before they do anything), the block
 * device of "/", and a last-resort cleanup of directories a failed test left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's busybox (scripts/rootfs.sh). */
export const BUSYBOX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../.cache/rootfs/busybox/bin/busybox');

/** A cgroup name no other test run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A started child and a promise of how it ended. */
export interface Waiting {
  child: ChildProcess;
  pid: number;
  /** Send the go line: the script's `read` returns. */
  go(): void;
  /** stdout so far. */
  out(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `argv` with piped stdio; the script should start with `read x` to wait for go(). */
export function startWaiting(argv: string[]): Waiting {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, pid: child.pid as number, go: () => child.stdin?.write('go\n'), out: () => out, exited };
}

/** Kill a child if it still runs. */
export function killQuietly(w: Waiting | undefined): void {
  if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
  try {
    w.child.kill('SIGKILL');
  } catch {
    // gone
  }
}

/** The whole-disk block device holding "/" as [major, minor] (blkio throttles need a disk, not a partition). */
export function rootDisk(): [number, number] {
  const st = fs.statSync('/');
  const major = Math.floor(Number(st.dev) / 256) & 0xfff;
  const minor = (Number(st.dev) & 0xff) | ((Number(st.dev) >> 12) & 0xfff00);
  const sys = `/sys/dev/block/${major}:${minor}`;
  if (fs.existsSync(path.join(sys, 'partition'))) {
    const parent = fs.readFileSync(path.join(fs.realpathSync(sys), '..', 'dev'), 'utf8').trim().split(':');
    return [Number(parent[0]), Number(parent[1])];
  }
  return [major, minor];
}

/** Remove leftover cgroup directories (deepest first), moving any process in them to the hierarchy root. */
export function removeLeftovers(dirs: readonly string[]): void {
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    if (!fs.existsSync(d)) continue;
    for (const sub of fs.readdirSync(d, { withFileTypes: true })) if (sub.isDirectory()) removeLeftovers([path.join(d, sub.name)]);
    try {
      fs.rmdirSync(d);
    } catch {
      // still busy: the next run's uniqueName avoids it
    }
  }
}

/** /proc/PID/stat state letter (R, S, D, ...). */
export function procState(pid: number): string {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
}
