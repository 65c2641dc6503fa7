/**
 * A supervisor with its NATS services, as `cordon daemon --nats` runs it: one connection, the command service
 * on `cordon.<host>.cmd.*` with service discovery, and (when asked) inspection of the container machines
 * (Stately inspector + `cordon.<host>.inspect.<id>`), wired in the order they need: inspection exists before
 * the supervisor creates its first actor. stop() takes them down in reverse and lets the process exit.
 *
 *   const d = await startNatsSupervisor({ root, host: 'node-a' }, { nats: { servers: url }, inspect: { url: 'ws://localhost:8080' } });
 *   ...
 *   await d.stop();
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { HOST_TOKEN } from '../events/command-api.js';
import { type NatsOptions, connectNats } from '../events/nats-connection.js';
import { type CommandService, CommandServiceError, UntrustedNetworkError, connectionAuthenticated, serveCommands } from './command-service.js';
import { type CommandPolicy, type CommandPolicyInput, resolvePolicy } from './command-policy.js';
import { defaultHostId } from './event-recorder.js';
import { type Inspection, startInspection } from './inspection.js';
import { Supervisor, type SupervisorOptions } from './supervisor.js';

/** Options of the NATS side. */
export interface NatsServicesOptions {
  nats: NatsOptions;
  /** Inspect the machines: true (no Stately inspector, NATS subjects only) or the inspector's WebSocket url. */
  inspect?: boolean | { url?: string };
  /** Where `create { config }` bundles go (see CommandServiceOptions). */
  bundleRoot?: string;
  /** How long stop() waits for commands in progress. */
  drainMs?: number;
  /** The command policy (see CommandServiceOptions.policy; default: the default policy). */
  policy?: CommandPolicy | CommandPolicyInput;
  /** Serve commands on a connection the server does not authenticate (see CommandServiceOptions.trustedNetwork). */
  trustedNetwork?: boolean;
  /**
   * When the command service refuses to start because the connection is not authenticated and the network is
   * not trusted: false (default) — startNatsSupervisor fails with that UntrustedNetworkError before the
   * supervisor starts; true — go on without commands (events still flow to JetStream), the error in
   * `commandsRefused` (what `cordon daemon` does, saying so on stderr).
   */
  commandsOptional?: boolean;
}

/** A running supervisor with its NATS services. */
export interface NatsSupervisor {
  readonly sup: Supervisor;
  readonly nc: NatsConnection;
  /** The command service; undefined when it was refused and `commandsOptional` let the rest start. */
  readonly commands?: CommandService;
  /** Why the command service did not start (with `commandsOptional`). */
  readonly commandsRefused?: UntrustedNetworkError;
  readonly inspection?: Inspection;
  /** Stop serving, supervising and inspecting; close the connection (containers keep running). */
  stop(): Promise<void>;
}

/** Start a Supervisor (with `supOpts`) and serve it on NATS. */
export async function startNatsSupervisor(supOpts: SupervisorOptions, o: NatsServicesOptions): Promise<NatsSupervisor> {
  const host = supOpts.host ?? defaultHostId();
  // Checked before anything starts: the default host id is the hostname, which may have dots.
  if (!HOST_TOKEN.test(host)) throw new CommandServiceError('host', `${JSON.stringify(host)} is not one subject token (letters, digits, - and _): give --host`);
  const policy = resolvePolicy(o.policy); // a bad policy is refused before anything starts
  const nc = await connectNats({ name: `cordon-supervisor-${host}`, ...o.nats });
  let inspection: Inspection | undefined;
  let sup: Supervisor | undefined;
  let commands: CommandService | undefined;
  let commandsRefused: UntrustedNetworkError | undefined;
  try {
    // Refused before anything starts (unless optional): the policy's validation, an untrusted network.
    const serve = (s: Supervisor) => serveCommands(s, nc, { host, bundleRoot: o.bundleRoot, drainMs: o.drainMs, onError: supOpts.onError, policy, trustedNetwork: o.trustedNetwork });
    const untrusted = !connectionAuthenticated(nc) && !(o.trustedNetwork ?? policy.trustedNetwork);
    if (untrusted) {
      const e = new UntrustedNetworkError(nc.info ? `${nc.info.host}:${nc.info.port}` : nc.getServer());
      if (!o.commandsOptional) throw e;
      commandsRefused = e;
    }
    if (o.inspect) inspection = startInspection({ host, nc, url: typeof o.inspect === 'object' ? o.inspect.url : undefined, onError: supOpts.onError });
    sup = await Supervisor.start({ ...supOpts, host, ...(inspection ? { inspect: inspection.inspect } : {}) });
    if (!commandsRefused) commands = serve(sup);
    const s = sup;
    const c = commands;
    return {
      sup: s,
      nc,
      ...(c ? { commands: c } : {}),
      ...(commandsRefused ? { commandsRefused } : {}),
      inspection,
      async stop() {
        await c?.stop();
        await s.stop();
        inspection?.stop();
        await nc.close();
      },
    };
  } catch (e) {
    await sup?.stop();
    inspection?.stop();
    await nc.close();
    throw e;
  }
}
