/**
 * Pseudo-terminals for `process.terminal`: a master/slave pair allocated in the parent (the slave becomes
 * the container's stdio and controlling terminal), window sizes, and raw mode for a caller's own tty.
 */
import fs from 'node:fs';
import { O, TIOC } from '../sys/flags.js';
import { fail, koffi, libc } from '../sys/libc.js';

const F = {
  posix_openpt: libc.func('int posix_openpt(int flags)'),
  grantpt: libc.func('int grantpt(int fd)'),
  unlockpt: libc.func('int unlockpt(int fd)'),
  ptsname_r: libc.func('int ptsname_r(int fd, _Out_ char *buf, size_t len)'),
  ioctl: libc.func('int ioctl(int fd, unsigned long req, void *arg)'),
};


/** A pty pair. */
export interface Pty {
  /** Master fd (close-on-exec, non-blocking). */
  master: number;
  /** Slave fd (close-on-exec in this process; dup'ed onto the container's 0-2). */
  slave: number;
  /** Path of the slave (/dev/pts/N). */
  path: string;
}

/** Allocate a pty pair. */
export function openPty(): Pty {
  const master = F.posix_openpt(O.RDWR | O.NOCTTY | O.CLOEXEC) as number;
  if (master < 0) fail('posix_openpt', '/dev/ptmx');
  if ((F.grantpt(master) as number) !== 0 || (F.unlockpt(master) as number) !== 0) {
    fs.closeSync(master);
    fail('unlockpt', '/dev/ptmx');
  }
  const buf = Buffer.alloc(64);
  if ((F.ptsname_r(master, buf, 64) as number) !== 0) {
    fs.closeSync(master);
    fail('ptsname', '/dev/ptmx');
  }
  const path = buf.toString('latin1', 0, buf.indexOf(0));
  const slave = fs.openSync(path, O.RDWR | O.NOCTTY | O.CLOEXEC);
  return { master, slave, path };
}

/** Set the window size of a terminal fd. */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  if ((F.ioctl(fd, TIOC.SWINSZ, ws) as number) !== 0) fail('ioctl', undefined, '(TIOCSWINSZ)');
}

/** The window size of a terminal fd, or undefined when it is not a terminal. */
export function windowSize(fd: number): { rows: number; cols: number } | undefined {
  const ws = Buffer.alloc(8);
  if ((F.ioctl(fd, TIOC.GWINSZ, ws) as number) !== 0) return undefined;
  return { rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2) };
}

/**
 * Pump bytes between a pty master and this process's stdin/stdout until the master hangs up (the
 * container side closed). Resolves then. Uses poll on the event loop; never blocks it.
 */
export function pumpPty(master: number, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const buf = Buffer.alloc(65536);
    const onInput = (d: Buffer) => {
      try {
        fs.writeSync(master, d);
      } catch {
        // the container side is gone
      }
    };
    input.on('data', onInput);
    // koffi reports readiness without detail: read; EIO (or 0) means the slave side is gone.
    const poll = koffi.node.poll(master, { readable: true, disconnect: true }, () => {
      let n: number;
      try {
        n = fs.readSync(master, buf, 0, buf.length, null);
      } catch {
        n = -1;
      }
      if (n > 0) output.write(Buffer.from(buf.subarray(0, n)));
      else {
        poll.close();
        input.off('data', onInput);
        resolve();
      }
    });
  });
}
