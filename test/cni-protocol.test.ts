/**
 * The runtime side of the CNI protocol (actors/cni.ts) against recording fake plugins (shell scripts):
 * the environment and stdin each plugin gets, prevResult chained through ADD, DEL in reverse with the final
 * result, a failing plugin's error JSON turned into a CniError naming it, and DEL after a failed ADD.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CniError, cniAdd, cniCheck, cniDel } from '../actors/cni.js';
import type { CniConfList } from '../config/network.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-cni-'));
const log = path.join(dir, 'log');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A plugin that logs "<name> <command> <env> <stdin>" and prints `result` (or fails when told to). */
function plugin(name: string, result: string): void {
  const script = `#!/bin/sh
input=$(cat)
printf '%s\\n' "${name} $CNI_COMMAND id=$CNI_CONTAINERID netns=$CNI_NETNS if=$CNI_IFNAME path=$CNI_PATH args=$CNI_ARGS stdin=$input" >> ${log}
case "$input" in *'"fail":"${name}"'*) if [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","code":11,"msg":"no luck","details":"range exhausted"}'; exit 1; fi;; esac
[ "$CNI_COMMAND" = ADD ] && printf '%s' '${result}'
exit 0
`;
  fs.writeFileSync(path.join(dir, name), script, { mode: 0o755 });
}

plugin('first', '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}');
plugin('second', '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}],"interfaces":[{"name":"eth0","sandbox":"/x"}]}');
const list = (extra: Record<string, unknown> = {}): CniConfList => ({ cniVersion: '1.0.0', name: 'fake', plugins: [{ type: 'first', ...extra }, { type: 'second', ...extra }] });
const inv = (confList: CniConfList) => ({ confList, binDirs: ['/nonexistent', dir], containerId: 'c1', netns: '/proc/1/ns/net', ifName: 'eth0', args: { K8S_POD: 'p', X: 'y' } });
const lines = () => fs.readFileSync(log, 'utf8').trim().split('\n');

describe('CNI protocol', () => {
  it('ADD runs the plugins in order with the CNI environment, name/cniVersion injected and prevResult chained', async () => {
    fs.rmSync(log, { force: true });
    const res = await cniAdd(inv(list()));
    expect(res.interfaces?.[0]?.name).toBe('eth0');
    const [a, b] = lines();
    expect(a).toMatch(/^first ADD id=c1 netns=\/proc\/1\/ns\/net if=eth0 path=\/nonexistent:.*cordon-cni-\w+ args=K8S_POD=p;X=y stdin=/);
    const stdinA = JSON.parse(a.slice(a.indexOf('stdin=') + 6)) as Record<string, unknown>;
    expect(stdinA).toEqual({ type: 'first', cniVersion: '1.0.0', name: 'fake' });
    const stdinB = JSON.parse(b.slice(b.indexOf('stdin=') + 6)) as Record<string, unknown>;
    expect(stdinB.prevResult).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.9.0.2/24' }] });
  });

  it('DEL runs in reverse with the ADD result; CHECK in order', async () => {
    fs.rmSync(log, { force: true });
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.2/24' }] };
    await cniDel({ ...inv(list()), netns: '' }, prev);
    await cniCheck(inv(list()), prev);
    expect(lines().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['second DEL', 'first DEL', 'first CHECK', 'second CHECK']);
    expect(lines()[0]).toContain('netns= ');
    expect(lines()[0]).toContain('"prevResult":{"cniVersion":"1.0.0"');
  });

  it('a failing plugin becomes a CniError naming it, and the list is DELeted before the error is thrown', async () => {
    fs.rmSync(log, { force: true });
    const err = await cniAdd(inv(list({ fail: 'second' }))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).message).toBe('network.cni: ADD of network "fake", plugin 1 (second): no luck: range exhausted (CNI error code 11)');
    expect((err as CniError).cniCode).toBe(11);
    expect(lines().map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['first ADD', 'second ADD', 'second DEL', 'first DEL']);
    const missing = await cniAdd(inv({ cniVersion: '1.0.0', name: 'fake', plugins: [{ type: 'absent' }] })).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/^network\.cni: ADD of network "fake", plugin 0 \(absent\): plugin not found in \/nonexistent:/);
  });
});
