/**
 * The one error vocabulary of cordon: libcontainer's error codes plus the few cordon needs, carried by one
 * error class from every door — the library throws it, the CLI prints `cordon: <Code>: <message>`, NATS
 * answers `{ error: { code, message, field? } }`. Every layer may import this module; it imports nothing.
 */

/** Every error code, libcontainer's first (libcontainer/error.go), then cordon's. */
export const ERROR_CODES = [
  // libcontainer
  'IdInUse',
  'InvalidIdFormat',
  'ContainerNotExists',
  'ContainerPaused',
  'ContainerNotStopped',
  'ContainerNotRunning',
  'ContainerNotPaused',
  'ConfigInvalid',
  'SystemError',
  // cordon: a container busy with another operation, a request refused before it reached a container, a verb
  // this build cannot do, the event log (a fact that could not be written, a damaged log, another writer), NATS
  // (PermissionDenied: the server's subject permissions, or the command policy — the rule named — refused it),
  // a container's damaged state file
  'ContainerBusy',
  'BadRequest',
  'UnknownVerb',
  'Unsupported',
  'EventLogFailed',
  'EventLogCorrupt',
  'HostLeaseHeld',
  'HostLogDiverged',
  'ReplyTooLarge',
  'Timeout',
  'NoResponders',
  'PermissionDenied',
  'StateCorrupt',
] as const;

/** One error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Is `x` one of the codes (for decoding a code that came over the wire)? */
export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && (ERROR_CODES as readonly string[]).includes(x);
}

/** What a LifecycleError may say besides its code and message. */
export interface LifecycleErrorDetails {
  /** The container's machine state when the command was refused. */
  state?: string;
  /** The JSON path of the config field or request field at fault. */
  field?: string;
  /** errno of the failed system call, when one failed. */
  errno?: number;
  /** The error this one stands for (a kernel, config or I/O error). */
  cause?: unknown;
}

/** An error of cordon, with a stable code from {@link ERROR_CODES}. */
export class LifecycleError extends Error {
  readonly code: ErrorCode;
  /** The container's machine state when the command was refused, if any. */
  readonly state?: string;
  /** The config or request field at fault (a JSON path), if any. */
  readonly field?: string;
  /** errno of the failed system call, if any. */
  readonly errno?: number;

  constructor(code: ErrorCode, message: string, details: LifecycleErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'LifecycleError';
    this.code = code;
    if (details.state !== undefined) this.state = details.state;
    if (details.field !== undefined) this.field = details.field;
    if (details.errno !== undefined) this.errno = details.errno;
  }
}
