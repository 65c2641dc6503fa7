/**
 * `cordon daemon`: the host's long-running supervisor on the embedded store. It replays the journal,
 * re-adopts live containers, records exits that happened while nothing watched, then follows every
 * container (exits, OOM kills) until SIGTERM/SIGINT. Containers keep running when it stops. CLI creates
 * next to it go through its control socket (ROOT/cordon.sock), so it is their parent and sees their exit codes.
 */
import { Supervisor } from '../actors/supervisor.js';
import { serveControlSocket } from '../actors/control-socket.js';
import { defaultHostId } from '../actors/event-recorder.js';
import type { NatsOptions } from '../events/nats-connection.js';

/**
 * Where the daemon forwards its events and serves commands: NATS options (--nats / CORDON_NATS_*), the host
 * id (--host), and inspection of the machines (--inspect [--inspect-url WS]).
 */
export interface DaemonNats {
  nats?: NatsOptions;
  host?: string;
  /** Send inspection events: to the Stately inspector at inspectUrl and, with NATS, on cordon.<host>.inspect.<id>. */
  inspect?: boolean;
  inspectUrl?: string;
  /** The command policy file (--policy FILE); default: the default policy. */
  policyFile?: string;
  /** Serve commands on an unauthenticated NATS connection (--trusted-network). */
  trustedNetwork?: boolean;
}

/** The supervisor with what runs around it (NATS services, inspection), and how to stop them together. */
async function startSupervision(root: string, o: DaemonNats): Promise<{ sup: Supervisor; stop: () => Promise<void> }> {
  const onError = (e: Error) => process.stderr.write(`cordon daemon: ${e.message}\n`);
  // Damage the journal quarantined (and other tolerated conditions), said once.
  const onWarning = (m: string) => process.stderr.write(`cordon daemon: warning: ${m}\n`);
  const host = o.host ?? defaultHostId();
  if (o.nats) {
    const { startNatsSupervisor } = await import('../actors/nats-supervisor.js');
    // A bad policy file stops the daemon before anything starts, naming the field.
    const policy = o.policyFile === undefined ? undefined : (await import('../actors/command-policy.js')).loadPolicyFile(o.policyFile);
    const d = await startNatsSupervisor(
      { root, nats: o.nats, host, onError, onWarning },
      { nats: o.nats, inspect: o.inspect ? { url: o.inspectUrl } : false, policy, ...(o.trustedNetwork ? { trustedNetwork: true } : {}), commandsOptional: true },
    );
    // Events still go to JetStream; the commands are refused loudly, not silently.
    if (d.commandsRefused) process.stderr.write(`cordon daemon: ${d.commandsRefused.message}\n`);
    return { sup: d.sup, stop: () => d.stop() };
  }
  const inspection = o.inspect ? (await import('../actors/inspection.js')).startInspection({ host, url: o.inspectUrl, onError }) : undefined;
  const sup = await Supervisor.start({ root, host: o.host, onError, onWarning, ...(inspection ? { inspect: inspection.inspect } : {}) });
  return {
    sup,
    stop: async () => {
      await sup.stop();
      inspection?.stop();
    },
  };
}

/** Run the daemon until a termination signal; resolves to the exit code. */
export async function runDaemon(root: string, o: DaemonNats = {}): Promise<number> {
  const { sup, stop: stopSupervision } = await startSupervision(root, o);
  // CLI `create` / `run -d` next to the daemon go through this socket, so the daemon is their parent.
  const stopServing = serveControlSocket(sup, root, (m) => process.stderr.write(`cordon daemon: ${m}\n`));
  const r = sup.recovery;
  process.stderr.write(`cordon daemon: supervising ${sup.ids().length} container(s) under ${root}; re-adopted ${r.adopted.length}, exited while down ${r.exitedWhileDown.length}${r.damaged.length ? `; damaged state, not supervised: ${r.damaged.join(', ')}` : ''}\n`);
  if (sup.outbox) {
    const ob = sup.outbox;
    process.stderr.write(`cordon daemon: host ${ob.host}: events to JetStream at ${String(o.nats?.servers)}${ob.report.connected ? '' : ' (not reachable yet: kept in the journal)'}${ob.report.imported ? `; restored ${ob.report.imported} event(s) from it` : ''}\n`);
  }
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = () => {
      clearInterval(keepAlive);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  stopServing();
  await stopSupervision();
  return 0;
}
