/**
 * The command API contract on NATS (ARCHITECTURE.md, "NATS subjects"): `cordon.<host>.cmd.<verb>` request/reply,
 * JSON in and out. Per verb: the request's fields (explicit schemas, unknown fields refused), the reply, and the
 * error shape `{ "error": { "code", "message", "field"? } }`. Shared by the service (actors/command-service.ts)
 * and the client (client/cordon-client.ts); no I/O here.
 */

import { type ErrorCode, LifecycleError } from '../errors/index.js';

/** Every verb the command service answers. */
export const COMMAND_VERBS = ['create', 'start', 'pause', 'resume', 'kill', 'exec', 'checkpoint', 'restore', 'destroy', 'list', 'state', 'stats', 'update'] as const;

/** One command verb. */
export type CommandVerb = (typeof COMMAND_VERBS)[number];

/** The service name in the NATS service discovery protocol ($SRV.PING.cordon). */
export const SERVICE_NAME = 'cordon';

/**
 * The request header carrying a caller's command token (the command policy maps its sha256 to a grant). Send it
 * over TLS: NATS headers travel as plain text.
 */
export const TOKEN_HEADER = 'Cordon-Token';

/**
 * The header nats-server adds to a request that crossed accounts through a service import (JSON: `acc`, and
 * with `share: true` on the import `user`, ...); the command policy takes the caller's NATS identity from it.
 */
export const REQUEST_INFO_HEADER = 'Nats-Request-Info';

/** A host id usable as one subject token (no dots, spaces or wildcards). */
export const HOST_TOKEN = /^[A-Za-z0-9_-]+$/;

/** `cordon.<host>.cmd.<verb>`. */
export function commandSubject(host: string, verb: CommandVerb | '>'): string {
  return `cordon.${host}.cmd.${verb}`;
}

/** The `error` member of a failed reply. */
export interface WireError {
  /** An error code (errors/index.ts: ContainerNotExists, ConfigInvalid, BadRequest, ...). */
  code: ErrorCode;
  message: string;
  /** The request field (JSON path) at fault, when one is. */
  field?: string;
  /** For PermissionDenied from the command policy: the policy rule that refused the request ("hooks", ...). */
  rule?: string;
}

/** A request refused before it reaches a container: names the field and why. */
export class RequestError extends LifecycleError {
  constructor(code: Extract<ErrorCode, 'BadRequest' | 'UnknownVerb' | 'Unsupported' | 'ReplyTooLarge'>, message: string, field?: string) {
    super(code, message, field === undefined ? {} : { field });
    this.name = 'RequestError';
  }
}

/** A process user in exec requests. */
export interface ExecUser {
  uid: number;
  gid?: number;
}

/** Request bodies by verb. */
export interface CommandRequests {
  /** From a bundle directory on that host, or from an OCI config object whose rootfs is `rootfs` (or config.root.path). */
  create: { id: string; bundle?: string; config?: Record<string, unknown>; rootfs?: string; noPivot?: boolean };
  start: { id: string };
  pause: { id: string };
  resume: { id: string };
  /** signal: a name (TERM, SIGKILL, RTMIN+1) or number; all: every process in its cgroups. */
  kill: { id: string; signal?: string | number; all?: boolean };
  /** runc exec's options; without detach the reply waits for the exit. */
  exec: {
    id: string;
    args?: string[];
    env?: string[];
    cwd?: string;
    user?: ExecUser;
    additionalGids?: number[];
    caps?: string[];
    noNewPrivileges?: boolean;
    process?: Record<string, unknown>;
    detach?: boolean;
    /** Capture stdout and stderr (up to 256 KiB each) into the reply; not with detach. */
    output?: boolean;
  };
  checkpoint: { id: string; imagePath?: string; workPath?: string; leaveRunning?: boolean; tcpEstablished?: boolean; fileLocks?: boolean };
  restore: { id: string; imagePath: string; workPath?: string; bundle?: string; tcpEstablished?: boolean; fileLocks?: boolean };
  destroy: { id: string; force?: boolean };
  list: Record<string, never>;
  state: { id: string };
  stats: { id: string };
  /** resources: an OCI linux.resources object; the flat fields are runc update's flags (sizes as bytes or "512m"). */
  update: {
    id: string;
    resources?: Record<string, unknown>;
    memory?: number | string;
    memoryReservation?: number | string;
    memorySwap?: number | string;
    cpuShares?: number;
    cpuQuota?: number;
    cpuPeriod?: number;
    cpusetCpus?: string;
    cpusetMems?: string;
    pidsLimit?: number;
    blkioWeight?: number;
  };
}

/** OCI state as `state` replies it. */
export interface OciStateReply {
  ociVersion: string;
  id: string;
  status: string;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** One container in a `list` reply. */
export interface ListedContainer {
  id: string;
  /** Machine state (created, running, paused, stopped, ...). */
  state: string;
  pid: number;
  bundle: string;
  created: string;
}

/** Reply bodies by verb. */
export interface CommandReplies {
  create: { id: string; pid: number; state: string };
  start: { id: string; state: string };
  pause: { id: string; state: string };
  resume: { id: string; state: string };
  kill: { id: string; signal: number; state: string };
  exec: { id: string; execId: string; pid: number; exitCode?: number | null; signal?: number | null; stdout?: string; stderr?: string; truncated?: boolean };
  /** imagesBytes: size of the images written; durationMs: the dump's time. */
  checkpoint: { id: string; state: string; imagePath: string; workPath: string; imagesBytes: number; durationMs: number; leaveRunning: boolean };
  /** pid: the restored init's host pid. */
  restore: { id: string; state: string; pid: number; imagePath: string; durationMs: number };
  destroy: { id: string; destroyed: true };
  list: { host: string; containers: ListedContainer[] };
  state: { id: string; host: string; state: string; oci: OciStateReply };
  /** runc's stats `data` object (cgroup figures and interfaces). */
  stats: { id: string; data: Record<string, unknown> };
  update: { id: string; state: string };
}

/** A failed reply. */
export interface ErrorReply {
  error: WireError;
}

type Kind = 'id' | 'string' | 'absPath' | 'bool' | 'int' | 'uint' | 'signal' | 'size' | 'strings' | 'uints' | 'object' | 'user';

interface Field {
  kind: Kind;
  required?: boolean;
}

const id: Field = { kind: 'id', required: true };
const bool: Field = { kind: 'bool' };
const uint: Field = { kind: 'uint' };

/** The schema of each verb's request: field → kind. Anything else is refused. */
const SCHEMAS: Record<CommandVerb, Record<string, Field>> = {
  create: { id, bundle: { kind: 'absPath' }, config: { kind: 'object' }, rootfs: { kind: 'absPath' }, noPivot: bool },
  start: { id },
  pause: { id },
  resume: { id },
  kill: { id, signal: { kind: 'signal' }, all: bool },
  exec: {
    id,
    args: { kind: 'strings' },
    env: { kind: 'strings' },
    cwd: { kind: 'absPath' },
    user: { kind: 'user' },
    additionalGids: { kind: 'uints' },
    caps: { kind: 'strings' },
    noNewPrivileges: bool,
    process: { kind: 'object' },
    detach: bool,
    output: bool,
  },
  checkpoint: { id, imagePath: { kind: 'absPath' }, workPath: { kind: 'absPath' }, leaveRunning: bool, tcpEstablished: bool, fileLocks: bool },
  restore: { id, imagePath: { kind: 'absPath', required: true }, workPath: { kind: 'absPath' }, bundle: { kind: 'absPath' }, tcpEstablished: bool, fileLocks: bool },
  destroy: { id, force: bool },
  list: {},
  state: { id },
  stats: { id },
  update: {
    id,
    resources: { kind: 'object' },
    memory: { kind: 'size' },
    memoryReservation: { kind: 'size' },
    memorySwap: { kind: 'size' },
    cpuShares: uint,
    cpuQuota: { kind: 'int' },
    cpuPeriod: uint,
    cpusetCpus: { kind: 'string' },
    cpusetMems: { kind: 'string' },
    pidsLimit: { kind: 'int' },
    blkioWeight: uint,
  },
};

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isUint = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Why `v` is not of `kind`, or undefined when it is. */
function mismatch(kind: Kind, v: unknown): string | undefined {
  switch (kind) {
    case 'id':
      return typeof v === 'string' && v.length > 0 && v.length <= 1024 ? undefined : 'expected a non-empty container id string';
    case 'string':
      return typeof v === 'string' ? undefined : 'expected a string';
    case 'absPath':
      return typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? undefined : 'expected an absolute path on the host';
    case 'bool':
      return typeof v === 'boolean' ? undefined : 'expected true or false';
    case 'int':
      return Number.isSafeInteger(v) ? undefined : 'expected an integer';
    case 'uint':
      return isUint(v) ? undefined : 'expected a non-negative integer';
    case 'signal':
      return (typeof v === 'string' && v.length > 0) || (Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 64) ? undefined : 'expected a signal name (TERM, SIGKILL) or number 1-64';
    case 'size':
      return Number.isSafeInteger(v) || (typeof v === 'string' && /^-?\d+[kmgtp]?b?$/i.test(v.trim())) ? undefined : 'expected bytes as an integer or a size like "512m"';
    case 'strings':
      return Array.isArray(v) && v.every((s) => typeof s === 'string') ? undefined : 'expected an array of strings';
    case 'uints':
      return Array.isArray(v) && v.every(isUint) ? undefined : 'expected an array of non-negative integers';
    case 'object':
      return isObj(v) ? undefined : 'expected an object';
    case 'user': {
      if (!isObj(v)) return 'expected { "uid": N, "gid"?: N }';
      const extra = Object.keys(v).filter((k) => k !== 'uid' && k !== 'gid');
      if (extra.length) return `unknown field ${JSON.stringify(extra[0])} (expected uid, gid)`;
      if (!isUint(v.uid)) return 'uid: expected a non-negative integer';
      if (v.gid !== undefined && !isUint(v.gid)) return 'gid: expected a non-negative integer';
      return undefined;
    }
  }
}

/** The verb of a subject `cordon.<host>.cmd.<verb>`, or a RequestError for an unknown one. */
export function verbOf(token: string): CommandVerb {
  if ((COMMAND_VERBS as readonly string[]).includes(token)) return token as CommandVerb;
  throw new RequestError('UnknownVerb', `unknown verb ${JSON.stringify(token)}; verbs: ${COMMAND_VERBS.join(', ')}`);
}

/**
 * Parse and check a request body against its verb's schema: JSON object (an empty body is `{}`), every
 * required field present, every field of its kind, no unknown field. Throws RequestError naming the field.
 */
export function parseRequest<V extends CommandVerb>(verb: V, body: Uint8Array | string): CommandRequests[V] {
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new RequestError('BadRequest', `${verb}: the request is not JSON: ${(e as Error).message}`);
    }
  }
  return checkRequest(verb, raw);
}

/** Check a parsed request body (see parseRequest). */
export function checkRequest<V extends CommandVerb>(verb: V, raw: unknown): CommandRequests[V] {
  if (!isObj(raw)) throw new RequestError('BadRequest', `${verb}: the request must be a JSON object`);
  const schema = SCHEMAS[verb];
  for (const k of Object.keys(raw)) {
    if (!(k in schema)) throw new RequestError('BadRequest', `${verb}: ${k}: unknown field (expected ${Object.keys(schema).join(', ') || 'none'})`, k);
  }
  for (const [k, f] of Object.entries(schema)) {
    const v = raw[k];
    if (v === undefined) {
      if (f.required) throw new RequestError('BadRequest', `${verb}: ${k}: required`, k);
      continue;
    }
    const why = mismatch(f.kind, v);
    if (why) throw new RequestError('BadRequest', `${verb}: ${k}: ${why}, got ${JSON.stringify(v)?.slice(0, 80)}`, k);
  }
  if (verb === 'create' && (raw.bundle === undefined) === (raw.config === undefined)) {
    throw new RequestError('BadRequest', 'create: bundle: give exactly one of "bundle" (a bundle directory) or "config" (an OCI config object)', 'bundle');
  }
  if (verb === 'create' && raw.rootfs !== undefined && raw.config === undefined) throw new RequestError('BadRequest', 'create: rootfs: only with "config"', 'rootfs');
  if (verb === 'exec' && raw.process === undefined && !(Array.isArray(raw.args) && raw.args.length > 0)) {
    throw new RequestError('BadRequest', 'exec: args: a command is required (or a whole "process" object)', 'args');
  }
  if (verb === 'exec' && raw.output === true && raw.detach === true) throw new RequestError('BadRequest', 'exec: output: cannot capture the output of a detached exec', 'output');
  return raw as CommandRequests[V];
}

/** A reply body that is an error. */
export function isErrorReply(x: unknown): x is ErrorReply {
  return isObj(x) && isObj(x.error) && typeof x.error.code === 'string' && typeof x.error.message === 'string';
}
