/**
 * The refusal of a command the container's machine cannot take in its state: one LifecycleError with a
 * libcontainer code and a runc-like message, the same from every door (CLI, library, NATS, control socket).
 */
import { type ErrorCode, LifecycleError } from '../errors/index.js';
import type { CommandSpec, ContainerStateName } from './lifecycle.js';

export { LifecycleError, type ErrorCode };

/** States in which the container is not settled: creating, an operation in progress, a checkpoint or restore. */
const SETTLED: readonly string[] = ['created', 'running', 'paused', 'checkpointed', 'stopped', 'destroyed'];

const VERB: Partial<Record<CommandSpec['type'], string>> = { destroy: 'delete', kill: 'signal', exec: 'exec into' };

/**
 * The error for command `c` refused by the machine of container `id` in `state` (a state name of the
 * machine: a lifecycle state or an operation state such as `pausing`). Call only when the machine cannot
 * take the command. Messages start with runc's wording ("container not running", "cannot delete container
 * X that is not stopped: running", ...), which the tools that drive runtimes match on.
 */
export function refusal(id: string, state: ContainerStateName | string, c: CommandSpec): LifecycleError {
  const err = (code: ErrorCode, message: string) => new LifecycleError(code, message, { state });
  const verb = VERB[c.type] ?? c.type;
  if (!SETTLED.includes(state)) return err('ContainerBusy', `container busy: ${id} is ${state} (cannot ${verb} it now)`);
  if (state === 'destroyed') return new LifecycleError('ContainerNotExists', `container does not exist: ${id}`, { state });
  switch (c.type) {
    case 'destroy':
      return err('ContainerNotStopped', `cannot delete container ${id} that is not stopped: ${state}`);
    case 'resume':
      return err('ContainerNotPaused', `container not paused: ${id} is ${state}`);
    case 'restore':
      return err('ContainerNotStopped', `cannot restore container ${id}: it is ${state}, not checkpointed`);
    case 'start':
      if (state === 'running' || state === 'paused') return err('ContainerNotStopped', `cannot start an already ${state} container: ${id}`);
      return err('ContainerNotRunning', state === 'stopped' ? `cannot start a container that has stopped: ${id}` : `cannot start container ${id}: it is ${state}`);
    default:
      break;
  }
  if (state === 'paused') return err('ContainerPaused', `container paused: ${id} (cannot ${verb} it)`);
  return notRunning(id, state, verb);
}

/** The refusal of a query that needs a live container (processes, stats) in `state`. */
export function notRunning(id: string, state: string, what: string): LifecycleError {
  return new LifecycleError('ContainerNotRunning', `container not running: ${id} is ${state} (cannot ${what} it)`, { state });
}

/** The error for a container the log does not know (or knows as destroyed). */
export function notExists(id: string): LifecycleError {
  return new LifecycleError('ContainerNotExists', `container does not exist: ${id}`);
}

/** The error for a create with an id the log holds for a container that is not destroyed. */
export function idInUse(id: string, state?: string): LifecycleError {
  return new LifecycleError('IdInUse', `container with id exists: ${id}`, state === undefined ? {} : { state });
}
