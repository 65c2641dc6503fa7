/**
 * A foreground `run`: the signals the runtime receives go to the container's init, and a terminal
 * container's pty is wired to the caller's tty (raw mode, window-size changes forwarded).
 */
import fs from 'node:fs';
import { SIGNALS } from '../kernel/index.js';
import type { ContainerInit } from '../kernel/index.js';
import { pumpPty, setWindowSize, windowSize } from '../kernel/index.js';
import { connectUnix, sendFds } from '../kernel/index.js';

/** Hand a pty master to a --console-socket listener (SCM_RIGHTS, named "/dev/ptmx" as runc does); our copy is closed. */
export function sendToConsoleSocket(socketPath: string, master: number): void {
  try {
    const conn = connectUnix(socketPath);
    try {
      sendFds(conn, Buffer.from('/dev/ptmx'), [master]);
    } finally {
      fs.closeSync(conn);
    }
  } finally {
    fs.closeSync(master);
  }
}

/** Forward the signals a foreground `run` receives to the container's init (as runc does). */
export function forwardSignals(init: Pick<ContainerInit, 'kill'>): () => void {
  const names: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];
  const handlers = names.map((n) => {
    const h = () => init.kill(SIGNALS[n.slice(3)]);
    process.on(n, h);
    return [n, h] as const;
  });
  return () => handlers.forEach(([n, h]) => process.off(n, h));
}

/**
 * A foreground run with a terminal: the caller's tty in raw mode wired to the pty master, window-size
 * changes forwarded (SIGWINCH). Returns the function that undoes it.
 */
export function attachTerminal(master: number): () => void {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  stdin.resume();
  const resize = () => {
    const ws = windowSize(1);
    if (ws) setWindowSize(master, ws.rows, ws.cols);
  };
  process.on('SIGWINCH', resize);
  const pumped = pumpPty(master, stdin, process.stdout);
  return () => {
    process.off('SIGWINCH', resize);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    void pumped.finally(() => fs.closeSync(master));
  };
}

