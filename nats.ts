/**
 * `cordon/nats`: a host's supervisor on NATS, as `cordon daemon --nats` runs it — its events forwarded to
 * JetStream (outbox, host lease, restore of an empty journal), its commands served on
 * `cordon.<host>.cmd.<verb>` under the NATS service protocol, its machines published for inspection — and
 * the JetStream event store for services that keep no local journal — and the command policy every command
 * passes (its file format, validation and errors).
 */
export { startNatsSupervisor, type NatsServicesOptions, type NatsSupervisor } from './actors/nats-supervisor.js';
export { Supervisor, type SupervisorOptions, type RecoveryReport } from './actors/supervisor.js';
export { serveCommands, UntrustedNetworkError, type CommandService, type CommandServiceOptions } from './actors/command-service.js';
export {
  BUILTIN_GRANTS,
  BYPASSABLE_RULES,
  CommandPolicyError,
  DEFAULT_BUNDLE_ROOTS,
  DEFAULT_CAPABILITIES,
  PolicyDeniedError,
  defaultPolicy,
  loadPolicyFile,
  parsePolicy,
  tokenDigest,
  type BypassableRule,
  type CommandPolicy,
  type CommandPolicyInput,
  type PolicyGrant,
  type PolicyNatsUser,
  type PolicyRule,
  type PolicyToken,
} from './actors/command-policy.js';
export { startInspection, type Inspection, type InspectionOptions, type InspectedSnapshot } from './actors/inspection.js';
export { connectNats, natsOptionsFromEnv, type NatsOptions } from './events/nats-connection.js';
export { JetStreamStore, type JetStreamStoreOptions } from './events/jetstream-store.js';
export { HostLeaseHeldError, HostLeaseLostError } from './events/host-lease.js';
export { HostLogDivergedError } from './events/jetstream-outbox.js';
