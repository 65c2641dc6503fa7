/**
 * pollFd and peerHungUp (kernel/io): waiting for an fd in poll(2) with a deadline, and seeing that the other
 * end of a stream socket is gone — what the control socket's two sides build on.
 */
import { closeSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { POLL, pollFd } from '../../kernel/io/fd.js';
import { peerHungUp, socketPair } from '../../kernel/io/unix-socket.js';

const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the test
    }
  }
});

function pair(): [number, number] {
  const p = socketPair();
  open.push(...p);
  return p;
}

describe('pollFd', () => {
  it('returns 0 after the timeout when nothing comes, having waited for it (not returned early)', () => {
    const [a] = pair();
    const t0 = performance.now();
    expect(pollFd(a, POLL.IN, 200)).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('returns POLLIN as soon as data is there, and POLLHUP with it once the peer closed', () => {
    const [a, b] = pair();
    writeSync(b, 'x');
    expect(pollFd(a, POLL.IN, 1000) & POLL.IN).toBe(POLL.IN);
    closeSync(b);
    expect(pollFd(a, POLL.IN, 1000) & POLL.HUP).toBe(POLL.HUP);
  });
});

describe('peerHungUp', () => {
  it('false while the peer holds its end (even with data queued), true once it closed it (even with data left unread)', () => {
    const [a, b] = pair();
    expect(peerHungUp(a)).toBe(false);
    writeSync(b, 'request');
    expect(peerHungUp(a)).toBe(false);
    closeSync(b);
    expect(peerHungUp(a)).toBe(true);
  });
});
