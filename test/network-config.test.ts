/**
 * The network config (config/network.ts): every bad field named by its JSON path — from the `network`
 * option and from the `org.cordon.network` annotation — defaults filled in, and the namespace rule.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/config-error.js';
import { NETWORK_ANNOTATION, type NetworkConfig, networkPlanOf } from '../config/network.js';
import type { NamespaceSetup } from '../config/model.js';

const NEW_NET: NamespaceSetup[] = [{ type: 'network' }, { type: 'mount' }];

function issues(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('network config', () => {
  it('fills in defaults: eth0, a veth host name of at most 15 bytes, CNI bin dirs and ifName', () => {
    const plan = networkPlanOf({ interfaces: [{ type: 'loopback' }, { type: 'veth', address: '10.0.0.2/24', gateway: '10.0.0.1' }], cni: { confList: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'loopback' }] }, ifName: 'net1' } }, {}, NEW_NET);
    expect(plan?.veth[0]).toMatchObject({ name: 'eth0', address: '10.0.0.2/24', gateway: '10.0.0.1', hairpinMode: false });
    expect(plan?.veth[0].hostInterfaceName).toMatch(/^veth[0-9a-f]{8}$/);
    expect(plan?.vethFields).toEqual(['network.interfaces[1]']);
    expect(plan?.cni).toMatchObject({ binDirs: ['/usr/lib/cni', '/opt/cni/bin'], ifName: 'net1' });
    expect(networkPlanOf({ interfaces: [{ type: 'loopback' }] }, {}, NEW_NET)).toBeUndefined();
    expect(networkPlanOf(undefined, {}, NEW_NET)).toBeUndefined();
  });

  it('names every bad veth field', () => {
    const bad = { interfaces: [{ type: 'veth', name: 'eth0/x', hostInterfaceName: 'a-very-long-host-name', bridge: 'br 0', mtu: 70000, txQueueLen: -1, macAddress: 'zz', address: '10.0.0.2', ipv6Address: '10.0.0.3/24', ipv6Gateway: 'fd00::1', hairpinMode: 'yes', colour: 'blue' }, { type: 'macvlan' }, 'x'] } as unknown as NetworkConfig;
    const got = issues(() => networkPlanOf(bad, {}, NEW_NET));
    for (const want of [
      'network.interfaces[0].colour: unknown field',
      'network.interfaces[0].name: invalid interface name "eth0/x" (1-15 bytes, no whitespace, "/" or ":")',
      'network.interfaces[0].hostInterfaceName: invalid interface name "a-very-long-host-name" (1-15 bytes, no whitespace, "/" or ":")',
      'network.interfaces[0].bridge: invalid interface name "br 0" (1-15 bytes, no whitespace, "/" or ":")',
      'network.interfaces[0].macAddress: invalid MAC address "zz"',
      'network.interfaces[0].address: invalid CIDR "10.0.0.2" (expected ADDRESS/PREFIX, e.g. "10.0.0.2/24")',
      'network.interfaces[0].ipv6Address: expected an IPv6 address, got "10.0.0.3/24"',
      'network.interfaces[0].ipv6Gateway: a gateway needs an IPv6 address on the interface to be reachable',
      'network.interfaces[1].type: unknown network type "macvlan" (expected "loopback" or "veth")',
      'network.interfaces[2]: expected an object, got "x"',
    ]) expect(got).toContain(want);
    expect(got.some((g) => g.startsWith('network.interfaces[0].mtu:'))).toBe(true);
    expect(got.some((g) => g.startsWith('network.interfaces[0].txQueueLen:'))).toBe(true);
    expect(got.some((g) => g.startsWith('network.interfaces[0].hairpinMode:'))).toBe(true);
  });

  it('refuses duplicate interface names, a CNI config without a list, relative paths, unknown plugins', () => {
    const got = issues(() => networkPlanOf({
      interfaces: [{ type: 'veth', name: 'eth0', hostInterfaceName: 'h0' }, { type: 'veth', name: 'eth0', hostInterfaceName: 'h0' }],
      cni: { confList: 'relative.conflist', binDir: 'bin' },
    }, {}, NEW_NET));
    expect(got).toContain('network.interfaces[1].name: interface name "eth0" is used by network.interfaces[0].name too');
    expect(got).toContain('network.interfaces[1].hostInterfaceName: interface name "h0" is used by network.interfaces[0].hostInterfaceName too');
    expect(got).toContain('network.cni.confList: must be an absolute path, got "relative.conflist"');
    expect(got).toContain('network.cni.binDir: must be an absolute path, got "bin"');
    const list = issues(() => networkPlanOf({ cni: { confList: { cniVersion: '', name: 'n', plugins: [{ type: 'nope' }, { type: '../bridge' }] } as never } }, {}, NEW_NET));
    expect(list).toContain('network.cni.confList.cniVersion: required string');
    expect(list).toContain('network.cni.confList.plugins[1].type: expected a plugin name, got "../bridge"');
    expect(issues(() => networkPlanOf({ cni: { confList: '/nonexistent/x.conflist' } }, {}, NEW_NET))[0]).toMatch(/^network\.cni\.confList: cannot read \/nonexistent\/x\.conflist: ENOENT/);
    expect(issues(() => networkPlanOf({ cni: {} } as never, {}, NEW_NET))).toEqual(['network.cni.confList: required field is missing']);
    expect(issues(() => networkPlanOf({ cni: { confList: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'nope' }] } } }, {}, NEW_NET))).toEqual(['network.cni.confList.plugins[0].type: plugin "nope" not found in /usr/lib/cni:/opt/cni/bin']);
  });

  it('reads the annotation, names its path, and the option wins over it', () => {
    const ann = { [NETWORK_ANNOTATION]: JSON.stringify({ interfaces: [{ type: 'veth', address: 'nope' }] }) };
    expect(issues(() => networkPlanOf(undefined, ann, NEW_NET))).toEqual(['annotations["org.cordon.network"].interfaces[0].address: invalid CIDR "nope" (expected ADDRESS/PREFIX, e.g. "10.0.0.2/24")']);
    expect(issues(() => networkPlanOf(undefined, { [NETWORK_ANNOTATION]: '{oops' }, NEW_NET))[0]).toMatch(/^annotations\["org\.cordon\.network"\]: invalid JSON/);
    expect(networkPlanOf({ interfaces: [{ type: 'veth', name: 'net0' }] }, ann, NEW_NET)?.veth[0].name).toBe('net0');
  });

  it('needs a new network namespace of the container\'s own', () => {
    const net: NetworkConfig = { interfaces: [{ type: 'veth' }] };
    expect(issues(() => networkPlanOf(net, {}, [{ type: 'mount' }]))).toEqual(['linux.namespaces: a network config needs a network namespace (add {"type": "network"})']);
    expect(issues(() => networkPlanOf(net, {}, [{ type: 'network', path: '/run/netns/x' }]))).toEqual(['linux.namespaces: a network config needs a new network namespace, not the joined /run/netns/x']);
  });
});
