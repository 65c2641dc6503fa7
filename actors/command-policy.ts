/**
 * The command policy of the NATS command service: who the caller of a request is (a command token, the NATS
 * user nats-server vouches for, or nobody) and what that caller's grant lets it ask for. This module is the
 * model, the policy file's validation and the caller's identity; actors/command-authorize.ts checks requests
 * against it.
 *
 * Without a policy the service uses {@link defaultPolicy}: every caller is anonymous and gets the built-in
 * `default` grant — every verb, no safety rule bypassed — and bundles must live under /var/lib/cordon/bundles
 * (or the service's own bundleRoot).
 *
 *   const policy = loadPolicyFile('/etc/cordon/policy.json'); // throws CommandPolicyError naming the field
 *   serveCommands(sup, nc, { policy });
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LifecycleError } from '../errors/index.js';
import { COMMAND_VERBS, type CommandVerb } from '../events/command-api.js';
import { CAPABILITY_NAMES, capabilityNumber } from '../config/linux/capability-names.js';

/**
 * The safety rules a grant may bypass, each a way a request could reach the host as root:
 * - `bundleRoots`: a `create { bundle }` directory (symlinks resolved) outside the bundle roots.
 * - `rootfs`: a rootfs (`rootfs`, `root.path`; symlinks resolved) outside the bundle roots.
 * - `hooks`: any OCI hook (they run on the host, as root).
 * - `bindMounts`: a bind mount whose source (symlinks resolved) is outside the bundle roots and the allowed
 *   host paths.
 * - `mountTypes`: a mount other than proc at /proc, read-only sysfs, tmpfs, devpts, mqueue, read-only
 *   cgroup/cgroup2 and binds (a block device, overlay or network file system would mount host storage; a
 *   second proc escapes the masked paths; a writable sysfs or cgroupfs changes host settings).
 * - `namespaces`: a container without new pid, mount, ipc, uts and network namespaces, or joining any
 *   existing namespace by path.
 * - `capabilities`: a capability outside {@link DEFAULT_CAPABILITIES} (and the grant's own `capabilities`) in
 *   any set of the container's process or of an exec.
 * - `devices`: a device node other than the runtime's defaults, or a device cgroup rule allowing more than
 *   the runtime's default rules (create's config and update's resources).
 * - `maskedPaths`: a container with /proc or /sys whose masked or read-only paths leave out one of runc's
 *   defaults (/proc/sys, /proc/sysrq-trigger, /proc/kcore, ... would let its root change the host).
 * - `noPivot`: create with noPivot (MS_MOVE + chroot: a chroot the container's CAP_SYS_CHROOT can leave).
 * - `network`: a network config (the `org.cordon.network` annotation: host interfaces, bridges, CNI plugins
 *   run on the host as root).
 * - `cgroupsPath`: a `linux.cgroupsPath` (the container could write its limits into, and join, any cgroup of
 *   the host; without one it gets its own, named by its id).
 * - `cgroupFiles`: a `unified` resource naming a cgroup core file (`cgroup.*`: cgroup.procs would move any
 *   host process, init included, into the container's cgroup, to be limited, frozen or killed with it); limits
 *   (memory.max, pids.max, ...) are fine (create's config and update's resources).
 * - `hostPaths`: a host path a request names outside the bundle roots and allowed host paths (checkpoint and
 *   restore image/work paths, restore's bundle, `linux.seccomp.listenerPath`).
 */
export const BYPASSABLE_RULES = ['bundleRoots', 'rootfs', 'hooks', 'bindMounts', 'mountTypes', 'namespaces', 'capabilities', 'devices', 'maskedPaths', 'noPivot', 'network', 'cgroupsPath', 'cgroupFiles', 'hostPaths'] as const;

/** A safety rule a grant may bypass. */
export type BypassableRule = (typeof BYPASSABLE_RULES)[number];

/**
 * Every rule a refusal may name: the bypassable ones, `verbs` (the verb is not in the caller's grant) and
 * `identity` (a token the policy does not know, an unreadable Nats-Request-Info header).
 */
export type PolicyRule = BypassableRule | 'verbs' | 'identity';

/** The capabilities a container may have without the `capabilities` rule bypassed (Docker's and containerd's default set). */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]);

/** Where remote callers' bundles live when no policy says otherwise. */
export const DEFAULT_BUNDLE_ROOTS: readonly string[] = Object.freeze(['/var/lib/cordon/bundles']);

/** What a caller may do. */
export interface PolicyGrant {
  /** The verbs it may send. */
  verbs: readonly CommandVerb[];
  /** The safety rules it may bypass. */
  bypass: readonly BypassableRule[];
  /** Capabilities it may ask for beyond {@link DEFAULT_CAPABILITIES} (canonical `CAP_*` names). */
  capabilities: readonly string[];
  /** Host paths it may bind-mount and name beyond the policy's (absolute). */
  hostPaths: readonly string[];
}

/** A command token: only its sha256 is stored. */
export interface PolicyToken {
  /** A name for messages and logs (never the token). */
  name: string;
  /** sha256 of the token, 64 lowercase hex digits. */
  sha256: string;
  /** The grant it maps to. */
  grant: string;
}

/** A NATS identity nats-server vouches for in `Nats-Request-Info`: an account, or one user of it. */
export interface PolicyNatsUser {
  /** The caller's account (`acc`). */
  account: string;
  /** The caller's user (`user`, sent with `share: true` on the import); absent: every user of the account. */
  user?: string;
  /** The grant it maps to. */
  grant: string;
}

/** A validated command policy. */
export interface CommandPolicy {
  /** Serve commands on a NATS connection without authentication (the server's INFO `auth_required` false). */
  trustedNetwork: boolean;
  /** Absolute directories bundles and rootfs must be under (the service's own bundleRoot is always added). */
  bundleRoots: readonly string[];
  /** Absolute host paths every caller may bind-mount (and name as checkpoint/restore paths). */
  hostPaths: readonly string[];
  /** The grant of a caller with no identity. */
  anonymous: string;
  /** Grants by name, the built-in ones ({@link BUILTIN_GRANTS}) included. */
  grants: Readonly<Record<string, PolicyGrant>>;
  /** Command tokens (Cordon-Token header) and their grants. */
  tokens: readonly PolicyToken[];
  /** NATS accounts and users (Nats-Request-Info) and their grants. */
  natsUsers: readonly PolicyNatsUser[];
}

/**
 * Grants every policy has: `default` (every verb, no rule bypassed), `none` (no verb) and `privileged` (every
 * verb, every rule bypassed: root on the host, for the host's operators only). A policy cannot redefine them.
 */
export const BUILTIN_GRANTS: Readonly<Record<string, PolicyGrant>> = Object.freeze({
  default: { verbs: COMMAND_VERBS, bypass: [], capabilities: [], hostPaths: [] },
  none: { verbs: [], bypass: [], capabilities: [], hostPaths: [] },
  privileged: { verbs: COMMAND_VERBS, bypass: BYPASSABLE_RULES, capabilities: [], hostPaths: [] },
});

/** A policy file (or policy option) that is not valid: names the field (a JSON path in the policy) and why. */
export class CommandPolicyError extends LifecycleError {
  constructor(source: string, field: string, reason: string) {
    super('BadRequest', `command policy ${source}: ${field}: ${reason}`, { field });
    this.name = 'CommandPolicyError';
  }
}

/** A request the command policy refused: code PermissionDenied, the rule and the field (JSON path) at fault. */
export class PolicyDeniedError extends LifecycleError {
  /** The rule that refused it. */
  readonly rule: PolicyRule;

  /**
   * @param rule - the rule that refused it
   * @param reason - why the rule exists, in a few words ("process hooks run on the host")
   * @param field - the JSON path of the request or config field refused
   * @param caller - who asked (its label and grant are named), or a description of an unidentified one
   */
  constructor(rule: PolicyRule, reason: string, field: string | undefined, caller: Caller | string) {
    const who = typeof caller === 'string' ? caller : `caller ${JSON.stringify(caller.label)} (grant ${JSON.stringify(caller.grantName)})`;
    super('PermissionDenied', `policy rule "${rule}": ${reason}${field ? `: ${field}` : ''} refused for ${who}`, field === undefined ? {} : { field });
    this.name = 'PolicyDeniedError';
    this.rule = rule;
  }
}

/** The policy object as a file or a library option gives it: every field optional (defaults in {@link parsePolicy}). */
export interface CommandPolicyInput {
  /** See {@link CommandPolicy.trustedNetwork} (default false). */
  trustedNetwork?: boolean;
  /** See {@link CommandPolicy.bundleRoots} (default {@link DEFAULT_BUNDLE_ROOTS}). */
  bundleRoots?: string[];
  /** See {@link CommandPolicy.hostPaths} (default none). */
  hostPaths?: string[];
  /** The grant of callers without identity (default "default"). */
  anonymous?: string;
  /** Named grants: verbs (names or "*"), rules to bypass, extra capabilities and host paths (each default none). */
  grants?: Record<string, { verbs?: string[]; bypass?: string[]; capabilities?: string[]; hostPaths?: string[] }>;
  /** Command tokens by sha256 (64 hex digits). */
  tokens?: Array<{ name: string; sha256: string; grant: string }>;
  /** NATS identities; without `user`, every user of the account. */
  natsUsers?: Array<{ account: string; user?: string; grant: string }>;
}

/** The policy without a policy file: anonymous callers with the `default` grant, bundles under {@link DEFAULT_BUNDLE_ROOTS}. */
export function defaultPolicy(): CommandPolicy {
  return parsePolicy({}, 'default');
}

const VALIDATED = new WeakSet<object>();

/**
 * A policy option as the service uses it: undefined is {@link defaultPolicy}, a policy {@link parsePolicy} or
 * {@link loadPolicyFile} returned is used as is, any other object is validated.
 *
 * @throws CommandPolicyError naming the field of an invalid policy object
 */
export function resolvePolicy(p: CommandPolicy | CommandPolicyInput | undefined): CommandPolicy {
  if (p === undefined) return defaultPolicy();
  return VALIDATED.has(p) ? (p as CommandPolicy) : parsePolicy(p);
}

/** The sha256 of a token, as a policy stores it. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const show = (x: unknown): string => (JSON.stringify(x) ?? String(x)).slice(0, 80);

/** Reads one object's fields, refusing unknown keys and wrong types, each error naming its JSON path. */
class Reader {
  constructor(private readonly source: string) {}

  fail(field: string, reason: string): never {
    throw new CommandPolicyError(this.source, field, reason);
  }

  object(field: string, x: unknown, keys: readonly string[]): Record<string, unknown> {
    if (!isObj(x)) this.fail(field || '(top level)', `expected an object, got ${show(x)}`);
    for (const k of Object.keys(x)) {
      if (!keys.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (expected ${keys.join(', ')})`);
    }
    return x;
  }

  bool(field: string, x: unknown, dflt: boolean): boolean {
    if (x === undefined) return dflt;
    if (typeof x !== 'boolean') this.fail(field, `expected true or false, got ${show(x)}`);
    return x;
  }

  string(field: string, x: unknown): string {
    if (typeof x !== 'string' || x === '') this.fail(field, `expected a non-empty string, got ${show(x)}`);
    return x;
  }

  strings(field: string, x: unknown): string[] {
    if (x === undefined) return [];
    if (!Array.isArray(x)) this.fail(field, `expected an array of strings, got ${show(x)}`);
    return x.map((e, i) => this.string(`${field}[${i}]`, e));
  }

  absPaths(field: string, x: unknown): string[] {
    return this.strings(field, x).map((p, i) => {
      if (!path.isAbsolute(p) || p.includes('\0')) this.fail(`${field}[${i}]`, `expected an absolute path, got ${show(p)}`);
      const n = path.resolve(p);
      if (n === '/') this.fail(`${field}[${i}]`, '"/" would allow the whole host');
      return n;
    });
  }
}

const NAME = /^[A-Za-z0-9_.-]+$/;

function readGrant(r: Reader, field: string, x: unknown): PolicyGrant {
  const o = r.object(field, x, ['verbs', 'bypass', 'capabilities', 'hostPaths']);
  const verbs = r.strings(`${field}.verbs`, o.verbs);
  const all = verbs.includes('*');
  verbs.forEach((v, i) => {
    if (v !== '*' && !(COMMAND_VERBS as readonly string[]).includes(v)) r.fail(`${field}.verbs[${i}]`, `unknown verb ${show(v)} (verbs: ${COMMAND_VERBS.join(', ')}, or "*")`);
  });
  const bypass = r.strings(`${field}.bypass`, o.bypass);
  bypass.forEach((b, i) => {
    if (!(BYPASSABLE_RULES as readonly string[]).includes(b)) r.fail(`${field}.bypass[${i}]`, `unknown rule ${show(b)} (rules: ${BYPASSABLE_RULES.join(', ')})`);
  });
  const capabilities = r.strings(`${field}.capabilities`, o.capabilities).map((c, i) => {
    const n = capabilityNumber(c);
    if (n === undefined) r.fail(`${field}.capabilities[${i}]`, `unknown capability ${show(c)} (a name such as "CAP_SYS_PTRACE")`);
    return `CAP_${CAPABILITY_NAMES[n]}`;
  });
  return {
    verbs: all ? COMMAND_VERBS : (verbs as CommandVerb[]),
    bypass: bypass as BypassableRule[],
    capabilities,
    hostPaths: r.absPaths(`${field}.hostPaths`, o.hostPaths),
  };
}

/**
 * Validate a policy object (a parsed policy file or the library option) in full: unknown keys, wrong types,
 * unknown verbs, rules, capabilities and grants, relative paths and duplicate tokens are refused naming the
 * field. Defaults: trustedNetwork false, bundleRoots {@link DEFAULT_BUNDLE_ROOTS}, hostPaths [], anonymous
 * "default", no tokens or NATS users.
 *
 * @param raw - the policy object
 * @param source - where it came from, for messages (the file path, "option")
 * @throws CommandPolicyError naming the field
 */
export function parsePolicy(raw: unknown, source = 'option'): CommandPolicy {
  const r: Reader = new Reader(source);
  const o = r.object('', raw, ['trustedNetwork', 'bundleRoots', 'hostPaths', 'anonymous', 'grants', 'tokens', 'natsUsers']);
  const grants: Record<string, PolicyGrant> = { ...BUILTIN_GRANTS };
  if (o.grants !== undefined) {
    if (!isObj(o.grants)) r.fail('grants', `expected an object of named grants, got ${show(o.grants)}`);
    for (const [name, g] of Object.entries(o.grants)) {
      const field = `grants.${name}`;
      if (!NAME.test(name)) r.fail(field, 'a grant name is letters, digits, ".", "-" and "_"');
      if (Object.hasOwn(BUILTIN_GRANTS, name)) r.fail(field, `"${name}" is a built-in grant (${Object.keys(BUILTIN_GRANTS).join(', ')}) and cannot be redefined`);
      grants[name] = readGrant(r, field, g);
    }
  }
  const grantRef = (field: string, x: unknown): string => {
    const g = r.string(field, x);
    if (!Object.hasOwn(grants, g)) r.fail(field, `unknown grant ${show(g)} (grants: ${Object.keys(grants).join(', ')})`);
    return g;
  };
  const list = (field: string, x: unknown): unknown[] => {
    if (x === undefined) return [];
    if (!Array.isArray(x)) r.fail(field, `expected an array, got ${show(x)}`);
    return x;
  };
  const seenTokens = new Map<string, number>();
  const tokens = list('tokens', o.tokens).map((t, i): PolicyToken => {
    const field = `tokens[${i}]`;
    const e = r.object(field, t, ['name', 'sha256', 'grant']);
    const name = r.string(`${field}.name`, e.name);
    const sha256 = r.string(`${field}.sha256`, e.sha256);
    if (!/^[0-9a-fA-F]{64}$/.test(sha256)) r.fail(`${field}.sha256`, 'expected the sha256 of the token: 64 hex digits (`printf %s TOKEN | sha256sum`)');
    const digest = sha256.toLowerCase();
    const dup = seenTokens.get(digest);
    if (dup !== undefined) r.fail(`${field}.sha256`, `the same token as tokens[${dup}]`);
    seenTokens.set(digest, i);
    return { name, sha256: digest, grant: grantRef(`${field}.grant`, e.grant) };
  });
  const seenUsers = new Map<string, number>();
  const natsUsers = list('natsUsers', o.natsUsers).map((u, i): PolicyNatsUser => {
    const field = `natsUsers[${i}]`;
    const e = r.object(field, u, ['account', 'user', 'grant']);
    const account = r.string(`${field}.account`, e.account);
    const user = e.user === undefined ? undefined : r.string(`${field}.user`, e.user);
    const key = `${account}\0${user ?? ''}`;
    const dup = seenUsers.get(key);
    if (dup !== undefined) r.fail(field, `the same account and user as natsUsers[${dup}]`);
    seenUsers.set(key, i);
    return { account, ...(user === undefined ? {} : { user }), grant: grantRef(`${field}.grant`, e.grant) };
  });
  const policy: CommandPolicy = {
    trustedNetwork: r.bool('trustedNetwork', o.trustedNetwork, false),
    bundleRoots: o.bundleRoots === undefined ? [...DEFAULT_BUNDLE_ROOTS] : r.absPaths('bundleRoots', o.bundleRoots),
    hostPaths: r.absPaths('hostPaths', o.hostPaths),
    anonymous: o.anonymous === undefined ? 'default' : grantRef('anonymous', o.anonymous),
    grants,
    tokens,
    natsUsers,
  };
  VALIDATED.add(policy);
  return policy;
}

/**
 * Read and validate a policy file (JSON).
 *
 * @throws CommandPolicyError naming the file and the field (or the JSON syntax error)
 */
export function loadPolicyFile(file: string): CommandPolicy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CommandPolicyError(file, '(file)', `cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CommandPolicyError(file, '(file)', `not JSON: ${(e as Error).message}`);
  }
  return parsePolicy(raw, file);
}

/** Who sent a request. */
export type CallerIdentity =
  | { kind: 'anonymous' }
  | { kind: 'token'; name: string }
  | { kind: 'nats'; account: string; user?: string };

/** A caller with its grant. */
export interface Caller {
  identity: CallerIdentity;
  /** For messages: "anonymous", "token:NAME", "nats:ACCOUNT/USER" or "nats:ACCOUNT". */
  label: string;
  grantName: string;
  grant: PolicyGrant;
}

/** What a request carries about its sender (header values). */
export interface CallerHeaders {
  /** The Cordon-Token header. */
  token?: string;
  /** The Nats-Request-Info header nats-server adds on a cross-account service import. */
  requestInfo?: string;
}

/**
 * The caller of a request and its grant: a token when one is sent (an unknown token is refused: rule
 * "identity"), else the NATS account and user of `Nats-Request-Info` when the server added it (mapped by
 * `natsUsers`: the account and user, else the account alone; unmapped: the anonymous grant), else anonymous.
 *
 * @throws PolicyDeniedError (rule "identity") for an unknown token or an unreadable Nats-Request-Info
 */
export function identifyCaller(policy: CommandPolicy, h: CallerHeaders): Caller {
  const anonymous = (identity: CallerIdentity, label: string): Caller => ({ identity, label, grantName: policy.anonymous, grant: policy.grants[policy.anonymous] });
  if (h.token !== undefined) {
    const digest = tokenDigest(h.token);
    const t = policy.tokens.find((x) => x.sha256 === digest);
    if (!t) throw new PolicyDeniedError('identity', 'the Cordon-Token header holds a token this policy does not know', 'Cordon-Token', 'an unidentified caller');
    return { identity: { kind: 'token', name: t.name }, label: `token:${t.name}`, grantName: t.grant, grant: policy.grants[t.grant] };
  }
  if (h.requestInfo !== undefined) {
    let info: unknown;
    try {
      info = JSON.parse(h.requestInfo);
    } catch {
      info = undefined;
    }
    if (!isObj(info) || typeof info.acc !== 'string' || info.acc === '' || (info.user !== undefined && typeof info.user !== 'string')) {
      throw new PolicyDeniedError('identity', 'the Nats-Request-Info header is not the JSON nats-server sends (acc, user)', 'Nats-Request-Info', 'an unidentified caller');
    }
    const account = info.acc;
    const user = typeof info.user === 'string' && info.user !== '' ? info.user : undefined;
    const identity: CallerIdentity = { kind: 'nats', account, ...(user === undefined ? {} : { user }) };
    const label = user === undefined ? `nats:${account}` : `nats:${account}/${user}`;
    const m = (user !== undefined ? policy.natsUsers.find((x) => x.account === account && x.user === user) : undefined) ?? policy.natsUsers.find((x) => x.account === account && x.user === undefined);
    if (!m) return anonymous(identity, label);
    return { identity, label, grantName: m.grant, grant: policy.grants[m.grant] };
  }
  return anonymous({ kind: 'anonymous' }, 'anonymous');
}
