/**
 * The command service: a host's supervisor answering `cordon.<host>.cmd.<verb>` requests on NATS (JSON in,
 * JSON out) and the NATS service discovery protocol under the name `cordon`. Every request is checked
 * against its verb's schema first; every failure is answered as `{ "error": { "code", "message", "field"? } }`
 * with the micro protocol's Nats-Service-Error headers, never a crash or a silent timeout. Every request is
 * authorized by the command policy (actors/command-policy.ts) before anything happens: the caller's identity
 * (a Cordon-Token header, the NATS user of Nats-Request-Info, or anonymous) maps to a grant, and a request its
 * grant does not allow is answered PermissionDenied naming the rule. On a connection the server did not
 * authenticate, commands are served only on a network the policy (or the option) says is trusted.
 *
 *   const sup = await Supervisor.start({ root, host: 'node-a' });
 *   const svc = serveCommands(sup, nc, { host: 'node-a' });
 *   ...
 *   await svc.stop();
 */
import fs from 'node:fs';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { headers } from '@nats-io/transport-node';
import { COMMAND_VERBS, type CommandVerb, HOST_TOKEN, REQUEST_INFO_HEADER, SERVICE_NAME, TOKEN_HEADER, type WireError, commandSubject, parseRequest, verbOf } from '../events/command-api.js';
import { LifecycleError } from '../errors/index.js';
import { toLifecycleError } from './errors.js';
import { handleCommand } from './command-handlers.js';
import { Authorizer } from './command-authorize.js';
import { type CommandPolicy, type CommandPolicyInput, PolicyDeniedError, identifyCaller, resolvePolicy } from './command-policy.js';
import { type EndpointStats, serveDiscovery } from './service-discovery.js';
import type { Supervisor } from './supervisor.js';

/** Version reported in service discovery. */
export const COMMAND_SERVICE_VERSION = '0.1.0';

/** Options of serveCommands. */
export interface CommandServiceOptions {
  /** Host id in the subjects (default: the supervisor's host id); one subject token. */
  host?: string;
  /** Where bundles of `create { config }` requests are written (default /var/lib/cordon/bundles/<host>). */
  bundleRoot?: string;
  /** Extra discovery metadata (the host id is always included). */
  metadata?: Record<string, string>;
  /** Called with unexpected errors (a reply that could not be sent, a handler that threw a non-Error). */
  onError?: (e: Error) => void;
  /** How long stop() waits for requests in progress (an exec waiting for its exit) before it returns (default 2000 ms). */
  drainMs?: number;
  /**
   * The command policy: a validated one (loadPolicyFile, parsePolicy) or the policy object (validated here;
   * a bad one throws CommandPolicyError naming the field). Default: {@link defaultPolicy}.
   */
  policy?: CommandPolicy | CommandPolicyInput;
  /**
   * Serve commands even though the connection is not authenticated (the server's INFO `auth_required` is
   * false): anyone who reaches the server is then a caller. Default: the policy's `trustedNetwork` (false).
   */
  trustedNetwork?: boolean;
}

/** A running command service. */
export interface CommandService {
  readonly host: string;
  /** The discovery instance id ($SRV.PING.cordon.<id>). */
  readonly id: string;
  /** Per-verb statistics, as $SRV.STATS reports them. */
  stats(): EndpointStats[];
  /** Stop answering; requests in progress get their replies if they finish within drainMs. */
  stop(): Promise<void>;
}

/** An invalid service option. */
export class CommandServiceError extends LifecycleError {
  constructor(field: string, reason: string) {
    super('BadRequest', `command service ${field}: ${reason}`, { field });
    this.name = 'CommandServiceError';
  }
}

/** serveCommands on a NATS connection without authentication, not said to be a trusted network. */
export class UntrustedNetworkError extends LifecycleError {
  constructor(server: string) {
    super(
      'PermissionDenied',
      `command service: not serving commands: the NATS connection to ${server} is not authenticated (the server's INFO has neither auth_required nor tls_verify), so anyone who reaches the server could run commands as root on this host; ` +
        'configure authentication on the server, or say the network is trusted (cordon daemon --trusted-network, policy "trustedNetwork": true, or the trustedNetwork option)',
      { field: 'trustedNetwork' },
    );
    this.name = 'UntrustedNetworkError';
  }
}

/**
 * Whether the server authenticates every connection: it requires authentication (INFO `auth_required`), or
 * a client certificate signed by its CA (mutual TLS: INFO `tls_verify`).
 */
export function connectionAuthenticated(nc: NatsConnection): boolean {
  const info = nc.info as (NonNullable<NatsConnection['info']> & { tls_verify?: boolean }) | undefined;
  return info?.auth_required === true || info?.tls_verify === true;
}

/** The wire error of anything thrown by a handler: its code, message, the field at fault and the policy rule. */
export function wireError(e: unknown): WireError {
  const le = toLifecycleError(e);
  return { code: le.code, message: le.message, ...(le.field ? { field: le.field } : {}), ...(le instanceof PolicyDeniedError ? { rule: le.rule } : {}) };
}


/** HTTP-like status for the Nats-Service-Error-Code header. */
function statusOf(code: string): number {
  if (code === 'BadRequest' || code === 'UnknownVerb' || code === 'ConfigInvalid' || code === 'InvalidIdFormat') return 400;
  if (code === 'ContainerNotExists') return 404;
  if (code === 'PermissionDenied') return 403;
  if (code === 'Unsupported') return 501;
  if (code === 'SystemError' || code === 'ReplyTooLarge' || code === 'EventLogFailed' || code === 'EventLogCorrupt') return 500;
  return 409;
}

/** Serve the command verbs of `sup` on `nc` until stop(). */
export function serveCommands(sup: Supervisor, nc: NatsConnection, opts: CommandServiceOptions = {}): CommandService {
  const host = opts.host ?? sup.host;
  if (!HOST_TOKEN.test(host)) throw new CommandServiceError('host', `${JSON.stringify(host)} is not one subject token (letters, digits, - and _)`);
  const bundleRoot = opts.bundleRoot ?? `/var/lib/cordon/bundles/${host}`;
  const policy = resolvePolicy(opts.policy);
  if (!connectionAuthenticated(nc) && !(opts.trustedNetwork ?? policy.trustedNetwork)) {
    throw new UntrustedNetworkError(nc.info ? `${nc.info.host}:${nc.info.port}` : nc.getServer());
  }
  const authz = new Authorizer(policy, bundleRoot);
  const nul = fs.openSync('/dev/null', 'r+');
  const base = { host, stdio: [nul, nul, nul], bundleRoot, authz };
  const prefix = commandSubject(host, '>').slice(0, -1);
  const discovery = serveDiscovery(
    nc,
    { name: SERVICE_NAME, version: COMMAND_SERVICE_VERSION, description: `cordon supervisor of host ${host}`, metadata: { host, root: sup.root, ...opts.metadata } },
    COMMAND_VERBS.map((v) => ({ name: v, subject: commandSubject(host, v) })),
  );
  const inFlight = new Set<Promise<void>>();
  const onError = opts.onError ?? (() => {});

  const handle = async (m: Msg): Promise<void> => {
    const t0 = process.hrtime.bigint();
    let verb: CommandVerb | undefined;
    let body: string;
    let failure: WireError | undefined;
    try {
      verb = verbOf(m.subject.slice(prefix.length));
      const req = parseRequest(verb, m.data);
      const h = m.headers;
      const caller = identifyCaller(policy, {
        ...(h?.has(TOKEN_HEADER) ? { token: h.get(TOKEN_HEADER) } : {}),
        ...(h?.has(REQUEST_INFO_HEADER) ? { requestInfo: h.get(REQUEST_INFO_HEADER) } : {}),
      });
      authz.verb(caller, verb);
      body = JSON.stringify(await handleCommand(verb, sup, req, { ...base, caller }));
    } catch (e) {
      failure = wireError(e);
      body = JSON.stringify({ error: failure });
    }
    const max = nc.info?.max_payload ?? 1 << 20;
    if (Buffer.byteLength(body) > max - 4096) {
      failure = { code: 'ReplyTooLarge', message: `${verb} reply of ${Buffer.byteLength(body)} bytes exceeds the server's max_payload (${max})` };
      body = JSON.stringify({ error: failure });
    }
    if (verb) discovery.record(verb, Number(process.hrtime.bigint() - t0), failure?.message);
    if (!m.reply) return;
    try {
      if (failure) {
        const h = headers();
        h.set('Nats-Service-Error', failure.message.split('\n')[0].slice(0, 512));
        h.set('Nats-Service-Error-Code', String(statusOf(failure.code)));
        m.respond(body, { headers: h });
      } else m.respond(body);
    } catch (e) {
      onError(e as Error);
    }
  };

  // Queue group "q" as micro services use: several instances of one host id share the work instead of all doing it.
  const sub: Subscription = nc.subscribe(`${prefix}>`, {
    queue: 'q',
    callback: (err, m) => {
      if (err) return onError(err);
      const p = handle(m).catch((e: unknown) => onError(e as Error));
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  });

  let stopped = false;
  return {
    host,
    id: discovery.id,
    stats: () => discovery.stats(),
    async stop() {
      if (stopped) return;
      stopped = true;
      sub.unsubscribe();
      discovery.stop();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((r) => (timer = setTimeout(r, opts.drainMs ?? 2000)));
      await Promise.race([Promise.allSettled([...inFlight]), late]);
      clearTimeout(timer);
      // Handlers still running keep their stdio fds (dup'd into their processes already): closing ours is safe.
      fs.closeSync(nul);
    },
  };
}
