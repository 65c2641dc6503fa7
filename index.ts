/**
 * `cordon`: the library for services that embed the runtime. Cordon opens a host's state directory and event
 * log; a Container is one container, driven through its state machine like every other door's verbs; every
 * failure is a LifecycleError with one code from ERROR_CODES. Only what this module exports is the package's
 * surface; the modules behind it may change.
 */
export { Cordon, Container, type CordonOptions, type ExecOptions, type ExecHandle, type ExitInfo, type RecoveryReport } from './actors/cordon.js';
export type { CreateOptions } from './actors/verbs/create.js';
export type { ContainerStats } from './actors/queries.js';
export type { OciState, OciStatus } from './actors/state-dir.js';
export { ERROR_CODES, LifecycleError, isErrorCode, type ErrorCode, type LifecycleErrorDetails } from './errors/index.js';
export { EVENT_ACTIONS, type CordonEvent, type EventAction } from './events/schema.js';
export type { EventFilter } from './events/observable.js';
export type { EventStore } from './events/store.js';
export type { ContainerStateName } from './machines/lifecycle.js';
export type { NetworkConfig } from './config/network.js';
export type { CgroupResources } from './kernel/index.js';
export type * from './config/oci-spec.js';
