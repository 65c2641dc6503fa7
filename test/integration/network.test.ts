/**
 * Container networking as root: the veth strategy (two containers on a private bridge ping each other,
 * what they see of eth0, stats counters, the CLI with the annotation) and CNI with Debian's plugins
 * (bridge + host-local + loopback: addresses from the IPAM range, containers reach each other), and after
 * delete no veth, bridge port, IPAM lease or state is left. Bad configs are refused naming the field.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CniResult, cniCheck } from '../../actors/cni.js';
import { type NetworkRecord, networkSummary, readNetworkRecord } from '../../actors/network.js';
import { runcStats } from '../../actors/runc-events.js';
import { ConfigError } from '../../config/config-error.js';
import type { NetworkConfig } from '../../config/network.js';
import { REPO_ROOT, makeUsernsRootfs } from '../fixtures/bundle.js';
import { Harness, type OciSpecLike, sections, sh, specs, waitFor } from './harness.js';

const h = new Harness('net');
const tag = String(process.pid % 100000);
const vethBridge = `cdn-v${tag}`;
const cniBridge = `cdn-c${tag}`;
const work = mkdtempSync(path.join(tmpdir(), 'cordon-net-'));
const ipamDir = path.join(work, 'ipam');

const netRaw = (s: OciSpecLike) => {
  const caps = s.process.capabilities as Record<string, string[]>;
  for (const k of ['bounding', 'effective', 'permitted']) caps[k] = [...caps[k], 'CAP_NET_RAW'];
};
const hostLinks = () => readdirSync('/sys/class/net');
const bridgePorts = (br: string) => readdirSync(`/sys/class/net/${br}/brif`);
/** Pids whose network namespace, or one of whose fds, is `ns` ("net:[4026532...]"). */
function netnsHolders(ns: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === ns) out.push(pid);
      for (const fd of readdirSync(`/proc/${pid}/fd`)) if (readlinkSync(`/proc/${pid}/fd/${fd}`) === ns) out.push(`${pid}/fd/${fd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Create + start a long-running container (it sleeps) with a network; returns its id. */
async function startSleeper(network: NetworkConfig): Promise<string> {
  const id = h.nextId();
  const b = h.bundle(specs(netRaw, sh('sleep 120')));
  const devnull = openSync('/dev/null', 'r+');
  try {
    await h.rt.create(id, { bundle: b.dir, network, stdio: [devnull, devnull, devnull] });
  } finally {
    closeSync(devnull);
  }
  await h.rt.start(id);
  return id;
}

beforeAll(() => {
  execFileSync('ip', ['link', 'add', vethBridge, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', '10.213.1.1/24', 'dev', vethBridge]);
  execFileSync('ip', ['link', 'set', vethBridge, 'up']);
});

afterAll(async () => {
  await h.cleanup();
  for (const br of [vethBridge, cniBridge]) spawnSync('ip', ['link', 'del', br]);
  rmSync(work, { recursive: true, force: true });
});

describe('veth strategy', () => {
  const veth = (n: number, extra: Record<string, unknown> = {}): NetworkConfig => ({
    interfaces: [{ type: 'loopback' }, { type: 'veth', name: 'eth0', bridge: vethBridge, hostInterfaceName: `cdn-h${tag}-${n}`, address: `10.213.1.${10 + n}/24`, gateway: '10.213.1.1', mtu: 1400, ...extra }],
  });

  it('two containers on one bridge ping each other; eth0 is as configured; stats count its packets; delete leaves no veth or port', async () => {
    const a = await startSleeper(veth(1, { macAddress: '02:42:0a:d5:01:0b', txQueueLen: 600, hairpinMode: true }));
    const hostA = `cdn-h${tag}-1`;
    expect(hostLinks()).toContain(hostA);
    expect(bridgePorts(vethBridge)).toEqual([hostA]);
    expect(readFileSync(`/sys/class/net/${hostA}/brport/hairpin_mode`, 'utf8').trim()).toBe('1');
    expect(readFileSync(`/sys/class/net/${hostA}/tx_queue_len`, 'utf8').trim()).toBe('600');

    const r = await h.run(specs(netRaw, sh([
      'echo "== addr =="; ip -o -4 addr show eth0',
      'echo "== mtu =="; cat /sys/class/net/eth0/mtu',
      'echo "== lo =="; cat /sys/class/net/lo/operstate; ip -o addr show lo | grep -c 127.0.0.1',
      'echo "== route =="; ip route show default',
      'echo "== ping =="; ping -c 2 -W 3 10.213.1.11 >/dev/null && echo peer-ok; ping -c 1 -W 3 10.213.1.1 >/dev/null && echo host-ok',
    ].join('; '))), { network: veth(2) });
    expect(r.status?.code, r.out).toBe(0);
    const out = sections(r.out);
    expect(out.addr).toContain('inet 10.213.1.12/24');
    expect(out.mtu).toBe('1400');
    expect(out.lo.split('\n')[1]).toBe('1');
    expect(out.route).toContain('default via 10.213.1.1 dev eth0');
    expect(out.ping).toBe('peer-ok\nhost-ok');
    // B was deleted by its run: its host end is gone, A's is the only port.
    expect(hostLinks()).not.toContain(`cdn-h${tag}-2`);
    expect(bridgePorts(vethBridge)).toEqual([hostA]);

    const stats = h.rt.cgroups.stats(a);
    const eth0 = stats.interfaces.find((i) => i.name === 'eth0');
    expect(eth0?.rx_packets).toBeGreaterThanOrEqual(2n); // B's echo requests
    expect(eth0?.tx_packets).toBeGreaterThanOrEqual(2n); // A's replies
    expect(eth0?.rx_bytes).toBeGreaterThan(0n);
    expect(runcStats(stats.cgroup, stats.interfaces).network_interfaces).toEqual(stats.interfaces);

    await h.rt.delete(a, { force: true });
    expect(hostLinks()).not.toContain(hostA);
    expect(bridgePorts(vethBridge)).toEqual([]);
  });

  it('through the CLI, from the bundle\'s org.cordon.network annotation: create, start, delete in separate processes leaves nothing', () => {
    const root = path.join(work, 'cli-root');
    const host = `cdn-h${tag}-9`;
    const b = h.bundle(specs(netRaw, sh('sleep 60'), (s) => {
      s.annotations = { 'org.cordon.network': JSON.stringify(veth(9)) };
    }));
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    // stderr to a file: a pipe would be held open by the container, and spawnSync would wait for it.
    const errFile = path.join(work, 'cli-stderr');
    const cordon = (...args: string[]) => {
      const fd = openSync(errFile, 'w');
      try {
        const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/cordon.js'), '--root', root, ...args], { env, stdio: ['ignore', 'ignore', fd], timeout: 30_000 });
        return { status: r.status, stderr: readFileSync(errFile, 'utf8') };
      } finally {
        closeSync(fd);
      }
    };
    const c = cordon('create', '-b', b.dir, 'cli-net');
    expect(c.status, c.stderr).toBe(0);
    expect(bridgePorts(vethBridge)).toContain(host);
    expect(cordon('start', 'cli-net').status).toBe(0);
    const pid = JSON.parse(execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin/cordon.js'), '--root', root, 'state', 'cli-net'], { env, encoding: 'utf8' })) as { pid: number };
    expect(execFileSync('nsenter', ['-t', String(pid.pid), '-n', 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })).toContain('10.213.1.19/24');
    // runc's events --stats line carries the interface counters of the container's namespace.
    const ev = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/cordon.js'), '--root', root, 'events', '--stats', 'cli-net'], { env, encoding: 'utf8', timeout: 30_000 });
    const stats = JSON.parse(ev.stdout.trim().split('\n')[0]) as { type: string; data: { network_interfaces: Array<{ name: string; rx_packets: number; tx_bytes: number }> } };
    expect(stats.type).toBe('stats');
    expect(stats.data.network_interfaces.map((i) => i.name)).toEqual(['eth0']);
    expect(typeof stats.data.network_interfaces[0].tx_bytes).toBe('number');
    // The create event tells where the container is on the network.
    const ev2 = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/cordon.js'), '--root', root, 'events', '--no-follow', '--format', 'json', '--filter', 'container=cli-net', '--filter', 'action=create'], { env, encoding: 'utf8', timeout: 30_000 });
    expect((JSON.parse(ev2.stdout.trim()) as { attributes: unknown }).attributes).toMatchObject({ network: { interfaces: [{ name: 'eth0', host, addresses: ['10.213.1.19/24'] }] } });
    const d = cordon('delete', '--force', 'cli-net');
    expect(d.status, d.stderr).toBe(0);
    expect(hostLinks()).not.toContain(host);
    expect(bridgePorts(vethBridge)).not.toContain(host);
    expect(existsSync(path.join(root, 'cli-net'))).toBe(false);
  });

  it('works for a container in its own user namespace (its network namespace belongs to that namespace)', async () => {
    const MAP = { containerID: 0, hostID: 100000, size: 65536 };
    const b = h.bundle(specs(netRaw, sh('ip -o -4 addr show eth0; ping -c 1 -W 3 10.213.1.1 >/dev/null && echo host-ok'), (s) => {
      s.linux.namespaces = [...(s.linux.namespaces ?? []), { type: 'user' }];
      s.linux.uidMappings = [MAP];
      s.linux.gidMappings = [MAP];
    }), makeUsernsRootfs(100000));
    const r = await h.run(b, { network: veth(4) });
    expect(r.status?.code, r.out).toBe(0);
    expect(r.out).toContain('inet 10.213.1.14/24');
    expect(r.out).toContain('host-ok');
    expect(hostLinks()).not.toContain(`cdn-h${tag}-4`);
  });

  it('a bad config is refused naming the field, before anything exists', async () => {
    const b = h.bundle(sh('true'));
    const bad: NetworkConfig = { interfaces: [{ type: 'veth', address: '10.213.1.300/24', gateway: '10.213.1.1', mtu: 20, macAddress: '01:00:5e:00:00:01' }] };
    const id = h.nextId();
    const err = await h.rt.create(id, { bundle: b.dir, network: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const paths = (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    expect(paths).toContain('network.interfaces[0].address: invalid CIDR "10.213.1.300/24" (expected ADDRESS/PREFIX, e.g. "10.0.0.2/24")');
    expect(paths).toContain('network.interfaces[0].gateway: a gateway needs an IPv4 address on the interface to be reachable');
    expect(paths.some((p) => p.startsWith('network.interfaces[0].mtu:'))).toBe(true);
    expect(paths).toContain('network.interfaces[0].macAddress: 01:00:5e:00:00:01 is a multicast address');
    expect(existsSync(h.rt.state.dir(id))).toBe(false);
    const noNetns = h.bundle((s) => {
      s.linux.namespaces = (s.linux.namespaces ?? []).filter((n) => n.type !== 'network');
    });
    await expect(h.rt.create(h.nextId(), { bundle: noNetns.dir, network: veth(5) })).rejects.toThrow('linux.namespaces: a network config needs a network namespace');
  });

  it('a createRuntime hook sees the network up, and when it fails the create removes the veth again', async () => {
    const seen = path.join(work, 'hook-saw');
    const b = h.bundle((s) => {
      s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `cat /sys/class/net/cdn-h${tag}-6/operstate > ${seen}; exit 2`] }] };
    });
    const id = h.nextId();
    const err = (await h.rt.create(id, { bundle: b.dir, network: veth(6) }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('hooks.createRuntime[0]');
    expect(readFileSync(seen, 'utf8').trim()).toBe('up');
    expect(hostLinks()).not.toContain(`cdn-h${tag}-6`);
    expect(existsSync(h.rt.state.dir(id))).toBe(false);
  });

  it('a failure on the host (no such bridge) names the field and leaves no veth, state dir or process', async () => {
    const b = h.bundle(sh('true'));
    const id = h.nextId();
    const err = (await h.rt.create(id, { bundle: b.dir, network: { interfaces: [{ type: 'veth', hostInterfaceName: `cdn-h${tag}-7`, bridge: 'cdn-nosuchbr' }] } }).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain('network.interfaces[0].bridge: no interface "cdn-nosuchbr" on the host');
    expect(hostLinks()).not.toContain(`cdn-h${tag}-7`);
    expect(existsSync(h.rt.state.dir(id))).toBe(false);
  });
});

describe('CNI (bridge + host-local + loopback from /usr/lib/cni)', () => {
  const confList = () => ({
    cniVersion: '1.0.0',
    name: `cordon-test-${tag}`,
    plugins: [
      { type: 'bridge', bridge: cniBridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.213.2.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir } },
      { type: 'loopback' },
    ],
  });
  const leases = () => (existsSync(path.join(ipamDir, `cordon-test-${tag}`)) ? readdirSync(path.join(ipamDir, `cordon-test-${tag}`)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : []);

  it('two containers get addresses from host-local and reach each other; delete releases the leases and leaves no port or veth', async () => {
    const file = path.join(work, 'net.conflist');
    writeFileSync(file, JSON.stringify(confList()));
    const before = new Set(hostLinks());
    const a = await startSleeper({ cni: { confList: file } });
    const rec = readNetworkRecord(h.rt.state.dir(a));
    expect(networkSummary(rec as NetworkRecord)).toMatchObject({ interfaces: [{ name: 'eth0', cni: `cordon-test-${tag}`, addresses: rec?.cni?.result?.ips?.map((i) => i.address) }] });
    const ipA = rec?.cni?.result?.ips?.[0]?.address ?? '';
    expect(ipA).toMatch(/^10\.213\.2\.\d+\/24$/);
    expect(rec?.cni?.result?.ips?.[0]?.gateway).toBe('10.213.2.1');
    expect(leases()).toEqual([ipA.split('/')[0]]);
    expect(readFileSync(path.join(ipamDir, `cordon-test-${tag}`, ipA.split('/')[0]), 'utf8')).toContain(a);
    expect(bridgePorts(cniBridge)).toHaveLength(1);
    // CHECK agrees with what ADD made (and fails once the interface is gone).
    const inv = { confList: rec?.cni?.confList as never, binDirs: ['/usr/lib/cni'], containerId: a, netns: `/proc/${h.rt.stateOf(a).pid}/ns/net`, ifName: 'eth0' };
    await cniCheck(inv, rec?.cni?.result as CniResult);
    await expect(cniCheck({ ...inv, ifName: 'eth9' }, rec?.cni?.result as CniResult)).rejects.toThrow(/CHECK of network "cordon-test-\d+", plugin 0 \(bridge\)/);

    const r = await h.run(specs(netRaw, sh(`echo "== addr =="; ip -o -4 addr show eth0; echo "== ping =="; ping -c 2 -W 3 ${ipA.split('/')[0]} >/dev/null && echo ok; ping -c 1 -W 3 10.213.2.1 >/dev/null && echo gw-ok`)), { network: { cni: { confList: confList(), binDir: '/usr/lib/cni', ifName: 'eth0' } } });
    expect(r.status?.code, r.out).toBe(0);
    const out = sections(r.out);
    const ipB = /inet (10\.213\.2\.\d+)\/24/.exec(out.addr)?.[1];
    expect(ipB).toBeDefined();
    expect(ipB).not.toBe(ipA.split('/')[0]);
    expect(out.ping).toBe('ok\ngw-ok');
    expect(leases()).toEqual([ipA.split('/')[0]]); // B's lease went with its delete

    const netnsA = execFileSync('readlink', [`/proc/${h.rt.stateOf(a).pid}/ns/net`], { encoding: 'utf8' }).trim();
    await h.rt.delete(a, { force: true });
    expect(leases()).toEqual([]);
    // No process (this one included: delete opened it for CNI DEL) holds the namespace any more.
    expect(netnsHolders(netnsA)).toEqual([]);
    expect(bridgePorts(cniBridge)).toEqual([]);
    expect(await waitFor(() => hostLinks().filter((l) => !before.has(l) && l !== cniBridge).length === 0, 3000)).toBe(true);
  });

  it('a stopped container\'s delete still releases its lease (DEL without a namespace)', async () => {
    const id = h.nextId();
    const b = h.bundle(sh('true'));
    const devnull = openSync('/dev/null', 'r+');
    await h.rt.create(id, { bundle: b.dir, network: { cni: { confList: confList() } }, stdio: [devnull, devnull, devnull] });
    closeSync(devnull);
    expect(leases()).toHaveLength(1);
    await h.rt.start(id);
    expect(await waitFor(() => h.rt.stateOf(id).status === 'stopped', 5000)).toBe(true);
    await h.rt.delete(id);
    expect(leases()).toEqual([]);
    expect(await waitFor(() => bridgePorts(cniBridge).length === 0, 3000)).toBe(true);
  });

  it('a plugin that fails names itself and the create leaves no lease, state dir or veth', async () => {
    const list = confList();
    (list.plugins[0].ipam as { ranges: unknown }).ranges = [[{ subnet: '10.213.2.0/24', rangeStart: '10.213.3.5' }]];
    const id = h.nextId();
    const err = (await h.rt.create(id, { bundle: h.bundle(sh('true')).dir, network: { cni: { confList: list } } }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/network\.cni: ADD of network "cordon-test-\d+", plugin 0 \(bridge\): /);
    expect(leases()).toEqual([]);
    expect(existsSync(h.rt.state.dir(id))).toBe(false);
    expect(bridgePorts(cniBridge)).toEqual([]);
    const missing = await h.rt.create(h.nextId(), { bundle: h.bundle(sh('true')).dir, network: { cni: { confList: { ...confList(), plugins: [{ type: 'nosuchplugin' }] } } } }).catch((e: unknown) => e);
    expect((missing as Error).message).toContain('network.cni.confList.plugins[0].type: plugin "nosuchplugin" not found in /usr/lib/cni:/opt/cni/bin');
  });
});
