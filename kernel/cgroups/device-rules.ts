/**
 * The device cgroup as a state (runc's devices emulator): a default (allow or deny everything) plus
 * exceptions per (type, major, minor) with "rwm" permissions. Used both ways:
 *   - v1: read the current state from devices.list, build the target from the rules, and write the minimal
 *     transition to devices.allow / devices.deny (a disruptive "a *:* rwm" first when the default changes
 *     or the current state is a deny-list whose exceptions devices.list cannot show);
 *   - v2: the clean rule list the eBPF device filter is generated from.
 */
import type { DeviceRule } from '../../config/model.js';

/** One exception: device node and the permissions it grants (or removes), in "rwm" order. */
interface Exception {
  type: 'c' | 'b';
  major: number;
  minor: number;
  perms: string;
}

const PERMS = 'rwm';
const norm = (s: Iterable<string>) => {
  const set = new Set(s);
  return [...PERMS].filter((c) => set.has(c)).join('');
};
const union = (a: string, b: string) => norm(a + b);
const minus = (a: string, b: string) => norm([...a].filter((c) => !b.includes(c)));
const intersect = (a: string, b: string) => norm([...a].filter((c) => b.includes(c)));
const keyOf = (type: string, major: number, minor: number) => `${type} ${major} ${minor}`;

/** "c 1:3 rwm" / "a *:* rwm" — the devices.allow / devices.deny syntax. */
export function deviceRuleString(r: DeviceRule): string {
  const n = (v: number) => (v < 0 ? '*' : String(v));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${norm(r.access)}`;
}

/** Thrown for rules the device cgroup cannot express (a hole punched into a wildcard exception). */
export class DeviceRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceRuleError';
  }
}

/** The state of a device cgroup. New emulators deny everything (what the rule lists are built against). */
export class DeviceEmulator {
  /** True: everything allowed except the exceptions; false: everything denied except the exceptions. */
  defaultAllow = false;
  private rules = new Map<string, Exception>();

  /** An emulator that applied `rules` in order, starting from deny-all (runc's buildEmulator). */
  static fromRules(rules: readonly DeviceRule[]): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const r of rules) e.apply(r);
    return e;
  }

  /** The state devices.list shows ("a *:* rwm" alone means allow-all; otherwise the allowed exceptions). */
  static fromList(text: string): DeviceEmulator {
    const e = new DeviceEmulator();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(line.trim());
      if (!m) throw new DeviceRuleError(`malformed devices.list line ${JSON.stringify(line)}`);
      const major = m[2] === '*' ? -1 : Number(m[2]);
      const minor = m[3] === '*' ? -1 : Number(m[3]);
      if (m[1] === 'a') {
        if (major !== -1 || minor !== -1 || norm(m[4]) !== PERMS) throw new DeviceRuleError(`partial wildcard rule in devices.list: ${JSON.stringify(line)}`);
        e.defaultAllow = true;
        e.rules.clear();
        continue;
      }
      e.add(m[1] as 'c' | 'b', major, minor, m[4]);
    }
    return e;
  }

  /** True when the default is allow (a deny-list). */
  isBlacklist(): boolean {
    return this.defaultAllow;
  }

  /** Apply one rule as the kernel's device cgroup would ("a" resets the default and drops every exception). */
  apply(rule: DeviceRule): void {
    if (rule.type === 'a') {
      this.defaultAllow = rule.allow;
      this.rules.clear();
      return;
    }
    if (rule.allow === this.defaultAllow) this.remove(rule.type, rule.major, rule.minor, norm(rule.access));
    else this.add(rule.type, rule.major, rule.minor, norm(rule.access));
  }

  private add(type: 'c' | 'b', major: number, minor: number, perms: string): void {
    const k = keyOf(type, major, minor);
    const cur = this.rules.get(k);
    this.rules.set(k, { type, major, minor, perms: union(cur?.perms ?? '', perms) });
  }

  private remove(type: 'c' | 'b', major: number, minor: number, perms: string): void {
    // cgroup v1 silently ignores removing part of a wildcard exception; runc refuses such rules instead.
    for (const [maj, min] of [
      [-1, minor],
      [major, -1],
      [-1, -1],
    ]) {
      if (maj === major && min === minor) continue;
      const partial = this.rules.get(keyOf(type, maj, min));
      if (partial && intersect(partial.perms, perms) !== '') {
        const target = deviceRuleString({ allow: false, type, major, minor, access: perms });
        const existing = deviceRuleString({ allow: false, type, major: maj, minor: min, access: partial.perms });
        throw new DeviceRuleError(`device rule "${target}" is not supported by the devices cgroup (cannot punch a hole in the wildcard rule "${existing}")`);
      }
    }
    const k = keyOf(type, major, minor);
    const cur = this.rules.get(k);
    if (!cur) return;
    const left = minus(cur.perms, perms);
    if (left === '') this.rules.delete(k);
    else this.rules.set(k, { ...cur, perms: left });
  }

  /** Exceptions sorted by (major, minor, type) as runc orders them (wildcards, -1, first). */
  private ordered(): Exception[] {
    return [...this.rules.values()].sort((a, b) => a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  /** The state as a clean rule list: the default as an "a" rule, then each exception (runc's Emulator.Rules). */
  toRules(): DeviceRule[] {
    const out: DeviceRule[] = [{ allow: this.defaultAllow, type: 'a', major: -1, minor: -1, access: PERMS }];
    for (const x of this.ordered()) out.push({ allow: !this.defaultAllow, type: x.type, major: x.major, minor: x.minor, access: x.perms });
    return out;
  }

  /**
   * The rules that take a cgroup in this state to `target` (runc's Emulator.Transition): a disruptive
   * "a *:* rwm" when the default differs or this state is a deny-list, then the dropped permissions of old
   * exceptions, then the gained ones of new exceptions.
   */
  transition(target: DeviceEmulator): DeviceRule[] {
    const out: DeviceRule[] = [];
    let old: Map<string, Exception> = this.rules;
    if (this.defaultAllow || this.defaultAllow !== target.defaultAllow) {
      out.push({ allow: target.defaultAllow, type: 'a', major: -1, minor: -1, access: PERMS });
      old = new Map();
    }
    const oldSorted = [...old.values()].sort((a, b) => a.major - b.major || a.minor - b.minor || (a.type < b.type ? -1 : 1));
    for (const x of oldSorted) {
      const dropped = minus(x.perms, target.rules.get(keyOf(x.type, x.major, x.minor))?.perms ?? '');
      if (dropped) out.push({ allow: target.defaultAllow, type: x.type, major: x.major, minor: x.minor, access: dropped });
    }
    for (const x of target.ordered()) {
      const gained = minus(x.perms, old.get(keyOf(x.type, x.major, x.minor))?.perms ?? '');
      if (gained) out.push({ allow: !target.defaultAllow, type: x.type, major: x.major, minor: x.minor, access: gained });
    }
    return out;
  }

  /** Same default and same exceptions. */
  equals(other: DeviceEmulator): boolean {
    if (this.defaultAllow !== other.defaultAllow || this.rules.size !== other.rules.size) return false;
    for (const [k, v] of this.rules) if (other.rules.get(k)?.perms !== v.perms) return false;
    return true;
  }
}
