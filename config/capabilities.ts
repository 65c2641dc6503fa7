/**
 * `process.capabilities`: capability names to numbers. An unknown name is an error; a name the running
 * kernel does not have (number above /proc/sys/kernel/cap_last_cap) is skipped with a warning, as runc does.
 */
import { readFileSync } from 'node:fs';
import { CAPABILITY_NAMES, capabilityNumber } from './linux/capability-names.js';
import type { CapabilitySetup } from './model.js';
import { readObject, readStringArray } from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';

/** The five capability sets, in the order they are reported. */
export const CAPABILITY_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;

/** Highest capability number the running kernel knows, or undefined when /proc does not tell. */
export function readCapLastCap(): number | undefined {
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    return Number.isInteger(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Convert `process.capabilities`. Absent gives empty sets, as runc does (a container never keeps the
 * runtime's own capabilities by omission); a missing set is empty. Duplicates within a set are dropped. An ambient capability missing from the permitted or
 * inheritable set draws a warning: the kernel refuses to raise it (runc logs and continues).
 *
 * @param issues - where errors and warnings go
 * @param raw - the `process.capabilities` value
 * @param capLastCap - the kernel's last capability (default: read from /proc/sys/kernel/cap_last_cap; when that
 *   cannot be read, every known name is accepted)
 */
export function convertCapabilities(issues: Issues, raw: unknown, capLastCap: number | undefined = readCapLastCap()): CapabilitySetup {
  const base = 'process.capabilities';
  const obj = readObject(issues, base, raw);
  const out: CapabilitySetup = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  if (obj === undefined) return out;
  for (const set of CAPABILITY_SETS) {
    const sp = childPath(base, set);
    const names = readStringArray(issues, sp, obj[set]);
    if (names === undefined) continue;
    (obj[set] as unknown[]).forEach((name, i) => {
      if (typeof name !== 'string' || name.includes('\0')) return; // already reported
      const p = indexPath(sp, i);
      const n = capabilityNumber(name);
      if (n === undefined) {
        issues.error(p, `unknown capability ${JSON.stringify(name)}`);
        return;
      }
      if (capLastCap !== undefined && n > capLastCap) {
        issues.warn(p, `capability ${JSON.stringify(name)} is not supported by the running kernel (cap_last_cap is ${capLastCap}); skipped`);
        return;
      }
      if (!out[set].includes(n)) out[set].push(n);
    });
  }
  const unraisable = out.ambient.filter((n) => !out.permitted.includes(n) || !out.inheritable.includes(n));
  if (unraisable.length > 0) {
    const names = unraisable.map((n) => `CAP_${CAPABILITY_NAMES[n]}`).join(', ');
    issues.warn(`${base}.ambient`, `${names} not in both the permitted and inheritable sets; the kernel will not raise them (runc logs the same)`);
  }
  return out;
}
