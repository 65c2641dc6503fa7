/**
 * What every verb's actor works with: the state root, the event log, the inits this process created and
 * follows, and where warnings go. The container host (actors/container-host.ts) is the one implementation.
 */
import type { ContainerInit } from '../../kernel/index.js';
import type { EventRecorder } from '../event-recorder.js';
import type { StateRoot } from '../state-dir.js';

/** The environment of a verb: state dirs, the log, this process's own container inits, warnings. */
export interface VerbContext {
  readonly state: StateRoot;
  readonly recorder: EventRecorder;
  /** Inits this process created and still follows (it is their parent: it reaps them and knows their exit codes). */
  readonly followed: Map<string, ContainerInit>;
  /** A condition the verb tolerated but the caller should hear about (a poststop hook that failed, ...). */
  warn(message: string): void;
  /** Add what the verb is about to make (cgroup paths, the init's pid) to its intent, for a recovery should it die. */
  noteIntent(id: string, data: Record<string, unknown>): void;
}
