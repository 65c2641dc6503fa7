/**
 * Typed errors of the lifecycle (libcontainer's set) and the check that turns an illegal command into one:
 * a command the machine cannot take in its current state is an error with a code, never a crash or a
 * silent no-op.
 */
import type { ContainerEvent, ContainerStateName } from './container.js';

/** libcontainer's error codes, plus the ones the extra states need. */
export type LifecycleErrorCode =
  | 'IdInUse'
  | 'InvalidIdFormat'
  | 'ContainerNotExists'
  | 'ContainerPaused'
  | 'ContainerNotStopped'
  | 'ContainerNotRunning'
  | 'ContainerNotPaused'
  | 'ContainerBusy'
  | 'ConfigInvalid'
  | 'SystemError';

/** An error of the container lifecycle, with a stable code. */
export class LifecycleError extends Error {
  readonly code: LifecycleErrorCode;
  /** The container's state when the command was refused, if any. */
  readonly state?: string;

  constructor(code: LifecycleErrorCode, message: string, state?: string) {
    super(message);
    this.name = 'LifecycleError';
    this.code = code;
    this.state = state;
  }
}

const BUSY: ContainerStateName[] = ['creating', 'checkpointing', 'restoring'];
const GONE: ContainerStateName[] = ['stopped', 'checkpointed', 'destroyed'];

/** The error for `command` refused in `state` (call only when the machine cannot take it). */
export function refusal(id: string, state: ContainerStateName, command: ContainerEvent): LifecycleError {
  const verb = command.type;
  const err = (code: LifecycleErrorCode, why: string) => new LifecycleError(code, `container ${id}: cannot ${verb}: ${why}`, state);
  if (BUSY.includes(state)) return err('ContainerBusy', `it is ${state}`);
  if (verb === 'destroy') return err('ContainerNotStopped', `it is ${state} (use force)`);
  if (verb === 'resume') return err('ContainerNotPaused', `it is ${state}`);
  if (verb === 'restore') return err('ContainerNotStopped', `it is ${state}, not checkpointed`);
  if (state === 'paused') return err('ContainerPaused', 'it is paused');
  if (verb === 'start' && (state === 'running')) return err('ContainerNotStopped', 'it is already running');
  if (GONE.includes(state)) return err('ContainerNotRunning', `it is ${state}`);
  return err('SystemError', `not allowed in state ${state}`);
}
