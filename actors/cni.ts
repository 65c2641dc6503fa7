/**
 * The CNI protocol, runtime side (CNI spec 1.0): run the plugins of a network list against a container's
 * network namespace — ADD in order, each getting the previous result as `prevResult`; CHECK in order and
 * DEL in reverse with the list's final ADD result — with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
 * CNI_IFNAME, CNI_ARGS, CNI_PATH in the environment and the plugin's config on stdin.
 */
import { LifecycleError } from '../errors/index.js';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { CniConfList } from '../config/network.js';

/** A CNI result (spec 1.0 "Success"), as much of it as cordon reads. */
export interface CniResult {
  cniVersion: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Which network, which container, where. */
export interface CniInvocation {
  confList: CniConfList;
  binDirs: readonly string[];
  containerId: string;
  /** Path of the container's network namespace file; "" for a DEL after it is gone. */
  netns: string;
  ifName: string;
  args?: Record<string, string>;
  /** Per-plugin timeout (default 60 s). */
  timeoutMs?: number;
}

/** A plugin failed: names the network, the plugin (its place in the list), the command, and the plugin's error. */
export class CniError extends LifecycleError {
  /** The plugin's type ("bridge"). */
  readonly plugin: string;
  readonly command: 'ADD' | 'DEL' | 'CHECK';
  /** CNI error code (spec: 1-99 well-known), if the plugin reported one. */
  readonly cniCode?: number;

  constructor(p: { network: string; index: number; plugin: string; command: CniError['command']; why: string; cniCode?: number }) {
    super('SystemError', `network.cni: ${p.command} of network ${JSON.stringify(p.network)}, plugin ${p.index} (${p.plugin}): ${p.why}`, { field: 'network.cni' });
    this.name = 'CniError';
    this.plugin = p.plugin;
    this.command = p.command;
    this.cniCode = p.cniCode;
  }
}

function pluginConfig(list: CniConfList, i: number, prevResult?: CniResult): string {
  const cfg: Record<string, unknown> = { ...list.plugins[i], cniVersion: list.cniVersion, name: list.name };
  if (prevResult) cfg.prevResult = prevResult;
  return JSON.stringify(cfg);
}

function findPlugin(binDirs: readonly string[], type: string): string | undefined {
  for (const d of binDirs) {
    const f = path.join(d, type);
    if (fs.existsSync(f)) return f;
  }
  return undefined;
}

/** Run one plugin once; resolves with its stdout, rejects with a CniError. */
function execPlugin(inv: CniInvocation, command: CniError['command'], index: number, stdin: string): Promise<string> {
  const type = inv.confList.plugins[index].type;
  const fail = (why: string, cniCode?: number) => new CniError({ network: inv.confList.name, index, plugin: type, command, why, cniCode });
  const bin = findPlugin(inv.binDirs, type);
  if (!bin) return Promise.reject(fail(`plugin not found in ${inv.binDirs.join(':')}`));
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: inv.containerId,
    CNI_NETNS: inv.netns,
    CNI_IFNAME: inv.ifName,
    CNI_PATH: inv.binDirs.join(':'),
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  };
  if (inv.args && Object.keys(inv.args).length) env.CNI_ARGS = Object.entries(inv.args).map(([k, v]) => `${k}=${v}`).join(';');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), inv.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(fail(`could not run ${bin}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) return resolve(stdout);
      if (signal) return reject(fail(`killed by ${signal}${signal === 'SIGKILL' ? ' (timed out)' : ''}`));
      let why = `exited with status ${code}`;
      let cniCode: number | undefined;
      try {
        const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
        cniCode = e.code;
        why = `${e.msg ?? 'error'}${e.details ? `: ${e.details}` : ''} (CNI error code ${e.code})`;
      } catch {
        if (err.trim()) why += `: ${err.trim().slice(-400)}`;
      }
      reject(fail(why, cniCode));
    });
  });
}

/**
 * ADD the container to the network list; resolves with the final result. When a plugin fails, DEL is run
 * for the whole list (as the spec asks of a runtime) before the error is thrown.
 */
export async function cniAdd(inv: CniInvocation): Promise<CniResult> {
  let prev: CniResult | undefined;
  try {
    for (let i = 0; i < inv.confList.plugins.length; i++) {
      const out = await execPlugin(inv, 'ADD', i, pluginConfig(inv.confList, i, prev));
      try {
        prev = JSON.parse(out) as CniResult;
      } catch {
        throw new CniError({ network: inv.confList.name, index: i, plugin: inv.confList.plugins[i].type, command: 'ADD', why: `result is not JSON: ${out.slice(0, 200)}` });
      }
    }
  } catch (e) {
    await cniDel(inv, prev).catch(() => {});
    throw e;
  }
  return prev ?? { cniVersion: inv.confList.cniVersion };
}

/** DEL the container from the network list (plugins in reverse order, each with the ADD result); tries every plugin, throws the first error. */
export async function cniDel(inv: CniInvocation, prevResult?: CniResult): Promise<void> {
  let first: unknown;
  for (let i = inv.confList.plugins.length - 1; i >= 0; i--) {
    try {
      await execPlugin(inv, 'DEL', i, pluginConfig(inv.confList, i, prevResult));
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/** CHECK that the container's networking is as ADD left it (plugins in order, each with the ADD result). */
export async function cniCheck(inv: CniInvocation, prevResult: CniResult): Promise<void> {
  for (let i = 0; i < inv.confList.plugins.length; i++) await execPlugin(inv, 'CHECK', i, pluginConfig(inv.confList, i, prevResult));
}
