/**
 * Network setup in the child: bring the loopback interface of a new network namespace up (libcontainer's
 * "loopback" strategy) with SIOCSIFFLAGS on a datagram socket.
 */
import type { ChildSteps } from '../spawn/child-steps.js';
import { SOCK } from '../sys/flags.js';

const AF_INET = 2;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

/** Steps that set `lo` up in the child's (new) network namespace. */
export function loopbackUp(s: ChildSteps): void {
  const ifreq = Buffer.alloc(40);
  ifreq.write('lo', 0, 'latin1');
  ifreq.writeUInt16LE(IFF_UP | IFF_RUNNING, 16);
  // socket() lands on the lowest free slot, as any open does.
  const sock = s.openPathLike('socket', [AF_INET, SOCK.DGRAM | SOCK.CLOEXEC, 0], { label: 'socket(AF_INET, SOCK_DGRAM)', field: 'linux.namespaces (network)' });
  s.call('ioctl', [sock, SIOCSIFFLAGS, ifreq], { label: 'ioctl(SIOCSIFFLAGS, "lo", IFF_UP)', field: 'linux.namespaces (network)' });
  s.close(sock);
}
