/**
 * Commands to cordon supervisors over NATS, without the event stream: typed verbs per host with timeouts and
 * CordonCommandError carrying the remote code, and host discovery through $SRV.PING.cordon. Light on purpose
 * (the NATS core client only), so the remote CLI loads fast; CordonClient (cordon-client.ts) adds events$.
 */
import { type NatsConnection, NoRespondersError, headers, PermissionViolationError, TimeoutError } from '@nats-io/transport-node';
import { type CommandReplies, type CommandRequests, type CommandVerb, COMMAND_VERBS, HOST_TOKEN, SERVICE_NAME, TOKEN_HEADER, commandSubject, isErrorReply } from '../events/command-api.js';
import { type NatsOptions, connectNats } from '../events/nats-connection.js';
import { LifecycleError, isErrorCode } from '../errors/index.js';

export type { CommandReplies, CommandRequests, CommandVerb };

/**
 * A command failed: a LifecycleError whose `code` is the remote one (ContainerNotExists, BadRequest,
 * Unsupported, ...; an unknown code becomes SystemError) or the client's (Timeout, NoResponders, PermissionDenied).
 */
export class CordonCommandError extends LifecycleError {
  readonly host: string;
  readonly verb: string;
  /** For a refusal of the supervisor's command policy (code PermissionDenied): the rule that refused it. */
  readonly rule?: string;

  constructor(host: string, verb: string, code: string, message: string, field?: string, cause?: unknown, rule?: string) {
    super(isErrorCode(code) ? code : 'SystemError', `${host} ${verb}: ${message}`, { ...(field === undefined ? {} : { field }), ...(cause === undefined ? {} : { cause }) });
    this.name = 'CordonCommandError';
    this.host = host;
    this.verb = verb;
    if (rule !== undefined) this.rule = rule;
  }
}

/** Options of one command. */
export interface CommandOptions {
  /** Give up after this many ms (default: the client's, 10 s). */
  timeoutMs?: number;
}

/** One host's verbs as typed methods. */
export type HostCommands = { [V in CommandVerb]: (req: CommandRequests[V], opts?: CommandOptions) => Promise<CommandReplies[V]> };

/** A supervisor found by hosts(). */
export interface DiscoveredHost {
  host: string;
  /** Service instance id. */
  id: string;
  version: string;
  metadata: Record<string, string>;
}

/** Options of the client. */
export interface CordonClientOptions {
  /** Default command timeout in ms (default 10000). */
  timeoutMs?: number;
  /**
   * A command token, sent with every request as the `Cordon-Token` header: the supervisors' command policy maps
   * it to a grant (default: none sent, the caller is anonymous unless the server tells its NATS user).
   */
  commandToken?: string;
}

/** Typed commands to any host's supervisor, and host discovery. */
export class CommandClient {
  readonly nc: NatsConnection;
  private readonly timeoutMs: number;
  private readonly owns: boolean;
  private readonly commandToken?: string;

  constructor(nc: NatsConnection, opts: CordonClientOptions & { ownsConnection?: boolean } = {}) {
    this.nc = nc;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    if (opts.commandToken !== undefined) this.commandToken = opts.commandToken;
    this.owns = opts.ownsConnection ?? false;
  }

  /** Connect with cordon's NATS options (user/pass, token, nkey, creds, TLS); close() closes the connection. */
  static async connect(opts: NatsOptions & CordonClientOptions): Promise<CommandClient> {
    return new CommandClient(await connectNats({ name: 'cordon-client', ...opts }), { timeoutMs: opts.timeoutMs, commandToken: opts.commandToken, ownsConnection: true });
  }

  /** Send one command to `host`'s supervisor; resolves with the reply or throws CordonCommandError. */
  async request<V extends CommandVerb>(host: string, verb: V, req: CommandRequests[V], opts: CommandOptions = {}): Promise<CommandReplies[V]> {
    if (!HOST_TOKEN.test(host)) throw new CordonCommandError(host, verb, 'BadRequest', `host: ${JSON.stringify(host)} is not a host id`, 'host');
    if (!(COMMAND_VERBS as readonly string[]).includes(verb)) throw new CordonCommandError(host, verb, 'UnknownVerb', `unknown verb ${JSON.stringify(verb)}`);
    const subject = commandSubject(host, verb);
    const timeout = opts.timeoutMs ?? this.timeoutMs;
    try {
      // A publish the server's permissions refuse fails the request at once (the client matches the -ERR to it).
      let h: ReturnType<typeof headers> | undefined;
      if (this.commandToken !== undefined) {
        h = headers();
        h.set(TOKEN_HEADER, this.commandToken);
      }
      const m = await this.nc.request(subject, JSON.stringify(req), { timeout, ...(h ? { headers: h } : {}) });
      const body: unknown = m.json();
      if (isErrorReply(body)) throw new CordonCommandError(host, verb, body.error.code, body.error.message, body.error.field, undefined, body.error.rule);
      return body as CommandReplies[V];
    } catch (e) {
      if (e instanceof CordonCommandError) throw e;
      if (isPermissionViolation(e)) throw new CordonCommandError(host, verb, 'PermissionDenied', `not allowed to publish to ${subject} (${(e as Error).message})`);
      const cause = (e as Error).cause;
      if (e instanceof NoRespondersError || cause instanceof NoRespondersError) throw new CordonCommandError(host, verb, 'NoResponders', `no supervisor answers ${subject}`);
      if (e instanceof TimeoutError || cause instanceof TimeoutError) throw new CordonCommandError(host, verb, 'Timeout', `no reply within ${timeout} ms`);
      throw new CordonCommandError(host, verb, 'SystemError', (e as Error).message, undefined, e);
    }
  }

  /** `host`'s verbs as methods: `client.host('node-a').start({ id })`. */
  host(host: string): HostCommands {
    return Object.fromEntries(COMMAND_VERBS.map((v) => [v, (req: never, o?: CommandOptions) => this.request(host, v, req, o)])) as unknown as HostCommands;
  }

  /** Every supervisor that answers $SRV.PING.cordon within `waitMs` (default 500). */
  async hosts(opts: { waitMs?: number } = {}): Promise<DiscoveredHost[]> {
    const out: DiscoveredHost[] = [];
    const it = await this.nc.requestMany(`$SRV.PING.${SERVICE_NAME}`, '', { strategy: 'timer', maxWait: opts.waitMs ?? 500 });
    for await (const m of it) {
      try {
        const p = m.json<{ type?: string; id: string; version: string; metadata?: Record<string, string> }>();
        if (p.type !== 'io.nats.micro.v1.ping_response') continue;
        out.push({ host: p.metadata?.host ?? '', id: p.id, version: p.version, metadata: p.metadata ?? {} });
      } catch {
        // not JSON: not a cordon supervisor
      }
    }
    return out.sort((a, b) => a.host.localeCompare(b.host) || a.id.localeCompare(b.id));
  }

  /** Close the connection if the client opened it. */
  async close(): Promise<void> {
    if (this.owns) await this.nc.close();
  }
}

/** A publish permission violation, as the error itself or as the cause of a request's error. */
function isPermissionViolation(e: unknown): boolean {
  const is = (x: unknown) => x instanceof PermissionViolationError || (x as Error | undefined)?.name === 'PermissionViolationError';
  return is(e) || is((e as Error | undefined)?.cause);
}
