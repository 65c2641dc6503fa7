/**
 * The device rules emulator (runc's): the v1 transition writes (checked against an strace of runc 1.1.5
 * creating a container with the default spec on this host), minimal updates, refused hole punching; and
 * the eBPF program built from the same clean rule list (instruction by instruction as runc's devicefilter).
 */
import { describe, expect, it } from 'vitest';
import { buildDeviceFilter, encodeInsns, evaluateDeviceFilter } from '../../kernel/cgroups/v2/device-filter.js';
import { DeviceEmulator, DeviceRuleError, deviceRuleString } from '../../kernel/cgroups/device-rules.js';
import type { DeviceRule } from '../../config/model.js';

const rule = (allow: boolean, type: DeviceRule['type'], major: number, minor: number, access: string): DeviceRule => ({ allow, type, major, minor, access });

/** runc 1.1.5's rules for the default spec: deny all, then its AllowedDevices in its order. */
const RUNC_DEFAULT: DeviceRule[] = [
  rule(false, 'a', -1, -1, 'rwm'),
  rule(true, 'c', -1, -1, 'm'),
  rule(true, 'b', -1, -1, 'm'),
  rule(true, 'c', 1, 3, 'rwm'),
  rule(true, 'c', 1, 8, 'rwm'),
  rule(true, 'c', 1, 7, 'rwm'),
  rule(true, 'c', 5, 0, 'rwm'),
  rule(true, 'c', 1, 5, 'rwm'),
  rule(true, 'c', 1, 9, 'rwm'),
  rule(true, 'c', 136, -1, 'rwm'),
  rule(true, 'c', 5, 2, 'rwm'),
  rule(true, 'c', 10, 200, 'rwm'),
];

const asWrites = (rules: DeviceRule[]) => rules.map((r) => `${r.allow ? 'devices.allow' : 'devices.deny'} ${deviceRuleString(r)}`);

describe('v1 transitions', () => {
  it('writes what runc 1.1.5 writes for a new cgroup (strace on this host)', () => {
    const fresh = DeviceEmulator.fromList('a *:* rwm\n');
    expect(asWrites(fresh.transition(DeviceEmulator.fromRules(RUNC_DEFAULT)))).toEqual([
      'devices.deny a *:* rwm',
      'devices.allow b *:* m',
      'devices.allow c *:* m',
      'devices.allow c 1:3 rwm',
      'devices.allow c 1:5 rwm',
      'devices.allow c 1:7 rwm',
      'devices.allow c 1:8 rwm',
      'devices.allow c 1:9 rwm',
      'devices.allow c 5:0 rwm',
      'devices.allow c 5:2 rwm',
      'devices.allow c 10:200 rwm',
      'devices.allow c 136:* rwm',
    ]);
  });

  it('updates an allow-list with only the changed permissions', () => {
    const current = DeviceEmulator.fromList('b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 10:200 rwm\n');
    const target = DeviceEmulator.fromRules([rule(false, 'a', -1, -1, 'rwm'), rule(true, 'b', -1, -1, 'm'), rule(true, 'c', -1, -1, 'm'), rule(true, 'c', 1, 3, 'r'), rule(true, 'c', 1, 5, 'rwm'), rule(true, 'c', 4, 1, 'rw')]);
    expect(asWrites(current.transition(target))).toEqual(['devices.deny c 1:3 wm', 'devices.deny c 10:200 rwm', 'devices.allow c 4:1 rw']);
    expect(current.transition(current)).toEqual([]);
  });

  it('starts over from a deny-list, whose exceptions devices.list cannot show', () => {
    const current = DeviceEmulator.fromList('a *:* rwm\n');
    const target = DeviceEmulator.fromRules([rule(true, 'a', -1, -1, 'rwm'), rule(false, 'c', 1, 5, 'w')]);
    expect(asWrites(current.transition(target))).toEqual(['devices.allow a *:* rwm', 'devices.deny c 1:5 w']);
  });

  it('applies rules as the kernel does: "a" resets, later rules override earlier ones', () => {
    const e = DeviceEmulator.fromRules([rule(false, 'b', 8, 1, 'rwm'), rule(true, 'a', -1, -1, 'rwm'), rule(false, 'b', 8, 2, 'rwm')]);
    expect(e.toRules().map(deviceRuleString)).toEqual(['a *:* rwm', 'b 8:2 rwm']);
    expect(e.isBlacklist()).toBe(true);
  });

  it('refuses to punch a hole in a wildcard exception', () => {
    expect(() => DeviceEmulator.fromRules([rule(false, 'a', -1, -1, 'rwm'), rule(true, 'c', -1, -1, 'm'), rule(false, 'c', 1, 3, 'm')])).toThrow(
      new DeviceRuleError('device rule "c 1:3 m" is not supported by the devices cgroup (cannot punch a hole in the wildcard rule "c *:* m")'),
    );
  });

  it('reads devices.list strictly', () => {
    expect(() => DeviceEmulator.fromList('a *:* r\n')).toThrow('partial wildcard rule');
    expect(() => DeviceEmulator.fromList('x 1:2 rwm\n')).toThrow('malformed devices.list line');
    expect(DeviceEmulator.fromList('c 1:3 rw\nc 1:3 m\n').toRules().map(deviceRuleString)).toEqual(['a *:* rwm', 'c 1:3 rwm']);
  });
});

describe('eBPF device filter', () => {
  const fmt = (p: ReturnType<typeof buildDeviceFilter>) => p.insns.map((x) => `${x.code.toString(16)} r${x.dst} r${x.src} ${x.off} ${x.imm}`);
  const prologue = ['61 r2 r1 0 0', '54 r2 r0 0 65535', '61 r3 r1 0 0', '74 r3 r0 0 16', '61 r4 r1 4 0', '61 r5 r1 8 0'];

  it('is runc\'s program for "deny everything" (TestDeviceFilter_Nil)', () => {
    const p = buildDeviceFilter([]);
    expect(fmt(p)).toEqual([...prologue, 'b4 r0 r0 0 0', '95 r0 r0 0 0']);
    expect(p.bytes.toString('hex')).toBe('6112000000000000' + '54020000ffff0000' + '6113000000000000' + '7403000010000000' + '6114040000000000' + '6115080000000000' + 'b400000000000000' + '9500000000000000');
  });

  it('is runc\'s program for allow-all except one block device (TestDeviceFilter_PrivilegedExceptSingleDevice)', () => {
    const p = buildDeviceFilter([rule(true, 'a', -1, -1, 'rwm'), rule(false, 'b', 8, 0, 'rwm')]);
    expect(fmt(p)).toEqual([...prologue, '55 r2 r0 4 1', '55 r4 r0 3 8', '55 r5 r0 2 0', 'b4 r0 r0 0 0', '95 r0 r0 0 0', 'b4 r0 r0 0 1', '95 r0 r0 0 0']);
  });

  it('checks the access bits when a rule is not rwm, jumping to the next block', () => {
    const p = buildDeviceFilter([rule(false, 'a', -1, -1, 'rwm'), rule(true, 'c', -1, -1, 'm'), rule(true, 'c', 1, 3, 'rwm')]);
    expect(fmt(p)).toEqual([
      ...prologue,
      // block 0: c *:* m
      '55 r2 r0 5 2',
      'bc r1 r3 0 0',
      '54 r1 r0 0 1',
      '5d r1 r3 2 0',
      'b4 r0 r0 0 1',
      '95 r0 r0 0 0',
      // block 1: c 1:3 rwm
      '55 r2 r0 4 2',
      '55 r4 r0 3 1',
      '55 r5 r0 2 3',
      'b4 r0 r0 0 1',
      '95 r0 r0 0 0',
      // default: deny
      'b4 r0 r0 0 0',
      '95 r0 r0 0 0',
    ]);
    expect(encodeInsns([p.insns[7]]).toString('hex')).toBe('bc31000000000000');
  });

  it('decides like the rules say (reference interpreter over runc\'s default list)', () => {
    const p = buildDeviceFilter(RUNC_DEFAULT);
    expect(p.defaultAllow).toBe(false);
    const cases: Array<[DeviceRule['type'] & ('c' | 'b'), number, number, string, boolean]> = [
      ['c', 1, 3, 'rw', true],
      ['c', 1, 3, 'm', true],
      ['c', 4, 0, 'r', false],
      ['c', 4, 0, 'm', true],
      ['b', 8, 0, 'm', true],
      ['b', 8, 0, 'r', false],
      ['c', 136, 5, 'rw', true],
      ['c', 10, 200, 'rwm', true],
      ['c', 10, 201, 'w', false],
    ];
    for (const [t, maj, min, acc, want] of cases) expect([t, maj, min, acc, evaluateDeviceFilter(p, t, maj, min, acc)]).toEqual([t, maj, min, acc, want]);
  });
});
