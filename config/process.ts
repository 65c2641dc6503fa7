/**
 * `process` to ProcessSetup: argv, environment, working directory, user, terminal, rlimits,
 * capabilities and the security labels, each checked with the rules the OCI spec and runc apply.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ProcessSetup } from './model.js';
import { convertCapabilities } from './capabilities.js';
import {
  UINT32,
  checkAbsolute,
  describeValue,
  missing,
  readArray,
  readBoolean,
  readInteger,
  readObject,
  readString,
  readStringArray,
  requireInteger,
  requireString,
} from './field-checks.js';
import { childPath, indexPath, type Issues } from './issues.js';
import { convertRlimits } from './rlimits.js';
import { checkExecCpuAffinity, checkIoPriority, checkScheduler } from './scheduling.js';

/** Host facts the process checks depend on; injectable for tests. */
export interface ProcessHostFacts {
  /** Highest capability number of the running kernel (default: /proc/sys/kernel/cap_last_cap). */
  capLastCap?: number;
  /** Whether SELinux is enabled (a `selinuxLabel` needs it). */
  selinuxEnabled?: boolean;
  /** Whether AppArmor is enabled (an `apparmorProfile` needs it). */
  apparmorEnabled?: boolean;
}

/** Whether SELinux is enabled on this host (selinuxfs is mounted). */
export function hostSelinuxEnabled(): boolean {
  return existsSync('/sys/fs/selinux/enforce');
}

/** Whether AppArmor is enabled on this host. */
export function hostApparmorEnabled(): boolean {
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    return false;
  }
}

/**
 * Check `process.env`: every entry "KEY=VALUE" with a non-empty key.
 *
 * @param base - JSON path of the array (`process.env`, `hooks.poststop[0].env`)
 */
export function readEnvironment(issues: Issues, base: string, raw: unknown): string[] {
  const list = readStringArray(issues, base, raw) ?? [];
  const arr = Array.isArray(raw) ? raw : [];
  arr.forEach((e, i) => {
    if (typeof e === 'string' && e.indexOf('=') < 1 && !e.includes('\0')) {
      issues.error(indexPath(base, i), `must be "KEY=VALUE" with a non-empty KEY, got ${describeValue(e)}`);
    }
  });
  return list.filter((e) => e.indexOf('=') >= 1);
}

/** Check `process.user`: uid/gid uint32 (0 when absent, as runc), umask 0..0o777, additionalGids uint32. */
function readUser(issues: Issues, raw: unknown): { uid: number; gid: number; additionalGids: number[]; umask?: number } {
  const base = 'process.user';
  const o = readObject(issues, base, raw) ?? {};
  const uid = readInteger(issues, childPath(base, 'uid'), o.uid, UINT32) ?? 0;
  const gid = readInteger(issues, childPath(base, 'gid'), o.gid, UINT32) ?? 0;
  const umask = readInteger(issues, childPath(base, 'umask'), o.umask, { min: 0, max: 0o777 });
  const gp = childPath(base, 'additionalGids');
  const additionalGids: number[] = [];
  (readArray(issues, gp, o.additionalGids) ?? []).forEach((g, i) => {
    const v = readInteger(issues, indexPath(gp, i), g, UINT32);
    if (v === undefined && (g === null || g === undefined)) issues.error(indexPath(gp, i), `expected a non-negative integer, got ${describeValue(g)}`);
    if (v !== undefined) additionalGids.push(v);
  });
  readString(issues, childPath(base, 'username'), o.username);
  return umask === undefined ? { uid, gid, additionalGids } : { uid, gid, additionalGids, umask };
}

function readArgs(issues: Issues, raw: unknown): string[] {
  const base = 'process.args';
  if (raw === undefined || raw === null) {
    issues.error(base, 'must have at least one element');
    return [];
  }
  const args = readStringArray(issues, base, raw);
  if (args === undefined) return [];
  if ((raw as unknown[]).length === 0) issues.error(base, 'must have at least one element');
  else if (args.length === (raw as unknown[]).length && args[0] === '') issues.error(indexPath(base, 0), 'must not be empty (it names the program to run)');
  return args;
}

function readConsoleSize(issues: Issues, raw: unknown): { height: number; width: number } | undefined {
  const base = 'process.consoleSize';
  const o = readObject(issues, base, raw);
  if (o === undefined) return undefined;
  const range = { min: 0, max: 0xffff };
  const height = requireInteger(issues, childPath(base, 'height'), o.height, range);
  const width = requireInteger(issues, childPath(base, 'width'), o.width, range);
  return height === undefined || width === undefined ? undefined : { height, width };
}

/**
 * Convert `process` (required). args must be non-empty with a non-empty args[0]; env entries are
 * KEY=VALUE; cwd is required and absolute; oomScoreAdj is -1000..1000; labels need their LSM enabled.
 *
 * @param issues - where errors and warnings go
 * @param raw - the `process` value
 * @param facts - host facts (defaults: read from /proc and /sys)
 */
export function convertProcess(issues: Issues, raw: unknown, facts: ProcessHostFacts = {}): ProcessSetup | undefined {
  const base = 'process';
  if (raw === undefined || raw === null) {
    missing(issues, base);
    return undefined;
  }
  const o = readObject(issues, base, raw);
  if (o === undefined) return undefined;

  const args = readArgs(issues, o.args);
  readString(issues, childPath(base, 'commandLine'), o.commandLine);
  const env = readEnvironment(issues, childPath(base, 'env'), o.env);
  const cwdPath = childPath(base, 'cwd');
  const cwd = requireString(issues, cwdPath, o.cwd);
  if (cwd !== undefined) checkAbsolute(issues, cwdPath, cwd);

  const terminal = readBoolean(issues, childPath(base, 'terminal'), o.terminal, false);
  const consoleSize = readConsoleSize(issues, o.consoleSize);
  const user = readUser(issues, o.user);
  const rlimits = convertRlimits(issues, o.rlimits);
  const capabilities = convertCapabilities(issues, o.capabilities, facts.capLastCap);
  const noNewPrivileges = readBoolean(issues, childPath(base, 'noNewPrivileges'), o.noNewPrivileges, false);
  const oomScoreAdj = readInteger(issues, childPath(base, 'oomScoreAdj'), o.oomScoreAdj, { min: -1000, max: 1000 });

  const apparmorProfile = readString(issues, childPath(base, 'apparmorProfile'), o.apparmorProfile);
  if (apparmorProfile && !(facts.apparmorEnabled ?? hostApparmorEnabled())) {
    issues.error(childPath(base, 'apparmorProfile'), `AppArmor profile ${JSON.stringify(apparmorProfile)} is specified, but AppArmor is not enabled on this host`);
  }
  const selinuxLabel = readString(issues, childPath(base, 'selinuxLabel'), o.selinuxLabel);
  if (selinuxLabel && !(facts.selinuxEnabled ?? hostSelinuxEnabled())) {
    issues.error(childPath(base, 'selinuxLabel'), 'selinux label is specified, but SELinux is disabled or not supported on this host');
  }
  checkIoPriority(issues, o.ioPriority);
  checkScheduler(issues, o.scheduler);
  checkExecCpuAffinity(issues, o.execCPUAffinity);

  const setup: ProcessSetup = {
    args,
    env,
    cwd: cwd ?? '',
    terminal,
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    rlimits,
    noNewPrivileges,
    capabilities,
  };
  if (consoleSize !== undefined) setup.consoleSize = consoleSize;
  if (user.umask !== undefined) setup.umask = user.umask;
  if (oomScoreAdj !== undefined) setup.oomScoreAdj = oomScoreAdj;
  if (apparmorProfile) setup.apparmorProfile = apparmorProfile;
  if (selinuxLabel) setup.selinuxLabel = selinuxLabel;
  return setup;
}
