/**
 * Capabilities in the child: bounding-set drops, capset of effective/permitted/inheritable (v3 header) and
 * the ambient set, in libcontainer's order around the uid switch.
 */
import fs from 'node:fs';
import { ERRNO, SYS } from '../sys/numbers.js';
import type { ChildSteps } from '../spawn/child-steps.js';
import { CAPABILITY_NAMES } from '../../config/linux/capability-names.js';
import { PR, PR_CAP_AMBIENT } from '../sys/flags.js';
import type { CapabilitySetup } from '../../config/model.js';

let capLast: number | undefined;

/** Highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap). */
export function lastCapability(): number {
  if (capLast === undefined) capLast = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  return capLast;
}

/** 64-bit mask of capability numbers. */
export function capMask(caps: readonly number[]): bigint {
  let m = 0n;
  for (const c of caps) m |= 1n << BigInt(c);
  return m;
}

/** Names of the capabilities in a mask ("CAP_CHOWN", ...), as /proc/PID/status hex decodes. */
export function capNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < CAPABILITY_NAMES.length; i++) if (mask & (1n << BigInt(i))) out.push(`CAP_${CAPABILITY_NAMES[i]}`);
  return out;
}

/** __user_cap_header_struct (v3) followed by two __user_cap_data_struct {effective, permitted, inheritable}. */
export function capsetData(c: CapabilitySetup): Buffer {
  const b = Buffer.alloc(8 + 24);
  b.writeUInt32LE(0x20080522, 0); // _LINUX_CAPABILITY_VERSION_3; pid 0 = this thread
  const sets = [capMask(c.effective), capMask(c.permitted), capMask(c.inheritable)];
  sets.forEach((m, j) => {
    b.writeUInt32LE(Number(m & 0xffffffffn), 8 + 4 * j);
    b.writeUInt32LE(Number(m >> 32n), 8 + 12 + 4 * j);
  });
  return b;
}

/** Drop every capability not in the bounding set (needs CAP_SETPCAP, so before capset). */
export function dropBoundingSet(s: ChildSteps, c: CapabilitySetup): void {
  const keep = new Set(c.bounding);
  for (let cap = 0; cap <= lastCapability(); cap++) {
    if (keep.has(cap)) continue;
    s.call('prctl', [PR.CAPBSET_DROP, cap, 0, 0, 0], { field: 'process.capabilities.bounding', label: `prctl(PR_CAPBSET_DROP, CAP_${CAPABILITY_NAMES[cap] ?? cap})` });
  }
}

/** capset(effective, permitted, inheritable), then the ambient set (each raised cap must be permitted and inheritable). */
export function applyCapabilities(s: ChildSteps, c: CapabilitySetup): void {
  const data = capsetData(c);
  s.sys(SYS.capset, [{ struct: (blob) => blob.add(data) }, { struct: (blob) => blob.add(data.subarray(8)) }], {
    field: 'process.capabilities', label: 'capset(effective, permitted, inheritable)',
  });
  s.call('prctl', [PR.CAP_AMBIENT, PR_CAP_AMBIENT.CLEAR_ALL, 0, 0, 0], { field: 'process.capabilities.ambient', label: 'prctl(PR_CAP_AMBIENT_CLEAR_ALL)' });
  for (const cap of c.ambient) {
    // runc only warns when an ambient capability cannot be raised (not permitted and inheritable): same here.
    s.call('prctl', [PR.CAP_AMBIENT, PR_CAP_AMBIENT.RAISE, cap, 0, 0], {
      check: 'report', tolerate: [ERRNO.EPERM, ERRNO.EINVAL], field: 'process.capabilities.ambient', label: `prctl(PR_CAP_AMBIENT_RAISE, CAP_${CAPABILITY_NAMES[cap] ?? cap})`,
    });
  }
}
