/**
 * One verb at a time per container, across processes, and the intent of the verb in progress. Each container
 * has a lock file ROOT/.locks/ID: a verb holds its flock for as long as it works on the container (the daemon,
 * the library and CLI processes alike) and writes its intent there — the verb, its process, the container's
 * log position, what it is about to make — before any side effect, and empties the file once the outcome is
 * in the log. The kernel drops a flock when its holder dies, so a non-empty file whose lock is free is a verb
 * that was killed midway: whoever takes the lock next finishes or undoes it (actors/intent-recovery.ts).
 *
 * The intent is not fsync'd: it guards against a process dying, not the machine (after a reboot no container
 * process, cgroup or /run state is left to reconcile).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LifecycleError } from '../errors/index.js';
import { tryFileLock } from '../kernel/index.js';
import { LOCK_DIR } from './state-dir.js';
import { errnoPart } from './state-file.js';

/** What a verb in progress wrote before its side effects. */
export interface Intent {
  /** The verb (create, start, pause, resume, kill, delete, exec, update). */
  verb: string;
  /** The process doing it. */
  pid: number;
  /** When it began (RFC 3339). */
  time: string;
  /** The container's containerSeq in the log when it began (what came after is the verb's outcome). */
  seq: number;
  /** What the verb is about to make or change, as it learns it (cgroup paths, the init's pid, ...). */
  [key: string]: unknown;
}

/**
 * Bytes of a lock file written once, when it is made: intents are then written in place, so a verb on an
 * existing container can state its intent even on a full filesystem (it fails later, at its fact, with
 * EventLogFailed, as a verb must). The first byte says whether an intent is there: `{`, or a space.
 */
const SLOT = 4096;

/** A held container lock: its intent can be written, extended and cleared; release() lets the next verb in. */
export class ContainerLock {
  private intent?: Intent;
  private released = false;

  constructor(
    readonly id: string,
    readonly file: string,
    private readonly fd: number,
    private readonly done: () => void,
  ) {}

  /** The intent a verb killed midway left behind (read once the lock is held), or undefined. */
  leftover(): Intent | undefined {
    return readIntent(this.fd);
  }

  /** The intent this verb wrote (undefined before begin() and after clear()). */
  current(): Intent | undefined {
    return this.intent;
  }

  /** Write the verb's intent (before its first side effect). */
  begin(verb: string, seq: number, data: Record<string, unknown> = {}): void {
    this.intent = { verb, pid: process.pid, time: new Date().toISOString(), seq, ...data };
    this.flush();
  }

  /** Add what the verb learnt (a path it is about to make, a pid) to its intent. */
  note(data: Record<string, unknown>): void {
    if (!this.intent) return;
    this.intent = { ...this.intent, ...data };
    this.flush();
  }

  /** The verb's outcome is in the log (or it was undone): no intent is left. */
  clear(): void {
    this.intent = undefined;
    this.write(Buffer.from(' '));
  }

  private flush(): void {
    this.write(Buffer.from(`${JSON.stringify(this.intent)}\n`));
  }

  private write(buf: Buffer): void {
    try {
      for (let done = 0; done < buf.length; ) done += fs.writeSync(this.fd, buf, done, buf.length - done, done);
    } catch (e) {
      throw lockFileError(this.id, this.file, e);
    }
  }

  /** Let the next verb in; `remove` deletes the lock file too (the container is gone). */
  release(remove = false): void {
    if (this.released) return;
    this.released = true;
    try {
      if (remove) removeLockFile(this.file);
    } finally {
      fs.closeSync(this.fd); // drops the flock
      this.done();
    }
  }
}

/** The intent in a lock file, or undefined when its first byte says there is none. */
function readIntent(fd: number): Intent | undefined {
  const buf = Buffer.alloc(SLOT);
  const n = fs.readSync(fd, buf, 0, SLOT, 0);
  if (n === 0 || buf[0] !== 0x7b) return undefined;
  let text = buf.toString('utf8', 0, n);
  if (!text.includes('\n') && n === SLOT) text = fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8');
  try {
    const x = JSON.parse(text.slice(0, text.indexOf('\n'))) as Intent;
    if (typeof x === 'object' && x !== null && typeof x.verb === 'string') return x;
  } catch {
    // torn by a crash mid-write
  }
  // The verb is unknown: the container is reconciled like any other.
  return { verb: 'unknown', pid: 0, time: '', seq: 0 };
}

/** Remove a lock file; the last one takes the directory along (a verb making a lock meanwhile keeps it or makes it again). */
function removeLockFile(file: string): void {
  fs.rmSync(file, { force: true });
  try {
    fs.rmdirSync(path.dirname(file));
  } catch {
    // other containers' locks, or gone already
  }
}

/** `container web: write /run/cordon/.locks/web: ENOSPC (no space left on device)`. */
function lockFileError(id: string, file: string, e: unknown): LifecycleError {
  const err = e as NodeJS.ErrnoException;
  return new LifecycleError('SystemError', `container ${id}: write ${file}: ${errnoPart(err)}`, { ...(typeof err.errno === 'number' ? { errno: Math.abs(err.errno) } : {}), cause: e });
}

/** The container locks of one state root. */
export class ContainerLocks {
  readonly dir: string;
  /** In this process: the verb on each id that holds or waits for its lock, so same-process waiters queue without polling. */
  private readonly tails = new Map<string, Promise<void>>();

  constructor(root: string) {
    this.dir = path.join(root, LOCK_DIR);
  }

  /**
   * Take container `id`'s lock: after the verbs of this process queued before, then the flock (polled: the
   * event loop stays free). Timeout (LifecycleError) after `timeoutMs`, naming the process holding it.
   */
  async acquire(id: string, timeoutMs = 60_000): Promise<ContainerLock> {
    const prev = this.tails.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = prev.then(() => mine);
    this.tails.set(id, tail);
    const finish = () => {
      done();
      if (this.tails.get(id) === tail) this.tails.delete(id);
    };
    await prev;
    try {
      const deadline = Date.now() + timeoutMs;
      for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
        const l = this.tryOpen(id, finish);
        if (l) return l;
        if (Date.now() >= deadline) {
          throw new LifecycleError('Timeout', `container ${id}: another cordon process holds its lock (${this.holderOf(id)}) for more than ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    } catch (e) {
      finish();
      throw e;
    }
  }

  /** Take the lock only if it is free now (no queueing): for a scan of leftover intents. */
  tryAcquire(id: string): ContainerLock | undefined {
    if (this.tails.has(id)) return undefined; // this process works on it
    let finish = () => {};
    const tail = new Promise<void>((r) => (finish = r));
    this.tails.set(id, tail);
    const l = this.tryOpen(id, () => {
      finish();
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    if (!l) {
      finish();
      this.tails.delete(id);
    }
    return l;
  }

  /** Open and flock the lock file; undefined when another process holds it. Retries when the file was replaced meanwhile. */
  private tryOpen(id: string, done: () => void): ContainerLock | undefined {
    const file = path.join(this.dir, id);
    for (;;) {
      let fd: number;
      try {
        fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        continue;
      }
      let taken = false;
      try {
        taken = tryFileLock(fd, file);
      } finally {
        if (!taken) fs.closeSync(fd);
      }
      if (!taken) return undefined;
      // The holder before us may have removed the file (a delete): then our lock is on a file nobody else opens.
      const same = (() => {
        try {
          return fs.statSync(file).ino === fs.fstatSync(fd).ino;
        } catch {
          return false;
        }
      })();
      if (!same) {
        fs.closeSync(fd);
        continue;
      }
      if (fs.fstatSync(fd).size < SLOT) {
        try {
          fs.writeSync(fd, Buffer.alloc(SLOT, 0x20), 0, SLOT, 0); // its room, taken now (see SLOT)
        } catch (e) {
          removeLockFile(file);
          fs.closeSync(fd);
          throw lockFileError(id, file, e);
        }
      }
      return new ContainerLock(id, file, fd, done);
    }
  }

  /** Ids whose lock file holds an intent (a verb in progress, or one killed midway). Cheap: one readdir, one stat each. */
  pending(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => {
      let fd = -1;
      try {
        fd = fs.openSync(path.join(this.dir, n), 'r');
        return readIntent(fd) !== undefined;
      } catch {
        return false;
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    });
  }

  /** Ids whose intent was left by a verb that died (its lock is free now): what a recovery has to finish. */
  abandoned(): string[] {
    return this.pending().filter((id) => {
      const l = this.tryAcquire(id);
      l?.release();
      return l !== undefined;
    });
  }

  /** Who holds a lock, for messages: the intent's verb and pid when one is written. */
  private holderOf(id: string): string {
    let fd = -1;
    try {
      fd = fs.openSync(path.join(this.dir, id), 'r');
      const x = readIntent(fd);
      return x ? `${x.verb} by pid ${x.pid} since ${x.time}` : 'no intent written yet';
    } catch {
      return 'no intent written yet';
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }
}
