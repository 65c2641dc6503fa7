/**
 * `cordon/client`: for services anywhere on the NATS system — CordonClient (every verb of every host,
 * typed, with timeouts; events$ as an rxjs Observable of the JetStream stream) and the lighter
 * CommandClient (commands only). Failures are CordonCommandErrors, LifecycleErrors with the remote code.
 */
export { CordonClient, eventSubject, EVENTS_STREAM, type PositionedEvent, type StreamFilter, type StreamStart } from './cordon-client.js';
export { CommandClient, CordonCommandError, type CommandOptions, type CordonClientOptions, type DiscoveredHost, type HostCommands } from './command-client.js';
export type { CommandReplies, CommandRequests, CommandVerb, ExecUser, ListedContainer, OciStateReply, WireError } from '../events/command-api.js';
export { ERROR_CODES, LifecycleError, isErrorCode, type ErrorCode } from '../errors/index.js';
export type { CordonEvent, EventAction } from '../events/schema.js';
export type { NatsOptions } from '../events/nats-connection.js';
