/**
 * The NATS service discovery protocol (io.nats.micro.v1), implemented here because @nats-io/services is only
 * a prerelease: a service answers `$SRV.PING|INFO|STATS`, `$SRV.<VERB>.<name>` and `$SRV.<VERB>.<name>.<id>`
 * with ping_response / info_response / stats_response, so `nats micro ls` and friends find it. Endpoint
 * statistics (requests, errors, processing time) are kept here as the service reports each request.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { nuid } from '@nats-io/transport-node';

/** One endpoint of a service: its name and subject. */
export interface EndpointSpec {
  name: string;
  subject: string;
  queueGroup?: string;
  metadata?: Record<string, string>;
}

/** An endpoint's statistics as stats_response carries them (times in nanoseconds). */
export interface EndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
}

/** What identifies a service instance. */
export interface ServiceIdentity {
  name: string;
  version: string;
  description?: string;
  metadata?: Record<string, string>;
}

/** A running discovery responder. */
export interface ServiceDiscovery {
  /** This instance's id (a nuid, as micro services use). */
  readonly id: string;
  /** Count one handled request of `endpoint` (error: its message when it failed). */
  record(endpoint: string, nanos: number, error?: string): void;
  /** Current endpoint statistics. */
  stats(): EndpointStats[];
  /** Unsubscribe the $SRV subjects. */
  stop(): void;
}

const VERBS = ['PING', 'INFO', 'STATS'] as const;

/** Answer the discovery subjects for `identity` with `endpoints`. */
export function serveDiscovery(nc: NatsConnection, identity: ServiceIdentity, endpoints: EndpointSpec[]): ServiceDiscovery {
  const id = nuid.next();
  const started = new Date().toISOString();
  const stats = new Map<string, EndpointStats>(
    endpoints.map((e) => [e.name, { name: e.name, subject: e.subject, queue_group: e.queueGroup ?? 'q', num_requests: 0, num_errors: 0, last_error: '', processing_time: 0, average_processing_time: 0 }]),
  );
  const base = () => ({ name: identity.name, id, version: identity.version, metadata: identity.metadata ?? {} });
  const bodies: Record<(typeof VERBS)[number], () => unknown> = {
    PING: () => ({ type: 'io.nats.micro.v1.ping_response', ...base() }),
    INFO: () => ({
      type: 'io.nats.micro.v1.info_response',
      ...base(),
      description: identity.description ?? '',
      endpoints: endpoints.map((e) => ({ name: e.name, subject: e.subject, queue_group: e.queueGroup ?? 'q', metadata: e.metadata ?? null })),
    }),
    STATS: () => ({ type: 'io.nats.micro.v1.stats_response', ...base(), started, endpoints: [...stats.values()].map((s) => ({ ...s, data: null })) }),
  };
  const subs: Subscription[] = [];
  for (const verb of VERBS) {
    for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${identity.name}`, `$SRV.${verb}.${identity.name}.${id}`]) {
      subs.push(
        nc.subscribe(subject, {
          callback: (err, m) => {
            if (!err) m.respond(JSON.stringify(bodies[verb]()));
          },
        }),
      );
    }
  }
  return {
    id,
    record(endpoint, nanos, error) {
      const s = stats.get(endpoint);
      if (!s) return;
      s.num_requests++;
      s.processing_time += nanos;
      s.average_processing_time = Math.round(s.processing_time / s.num_requests);
      if (error !== undefined) {
        s.num_errors++;
        s.last_error = error;
      }
    },
    stats: () => [...stats.values()].map((s) => ({ ...s })),
    stop() {
      for (const s of subs) s.unsubscribe();
    },
  };
}
