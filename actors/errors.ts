/**
 * Every error as a LifecycleError at the doors, without loss: cordon's own errors are LifecycleErrors
 * already (config, events, requests); the kernel layer's keep their message, errno and field and become
 * SystemError (a failed system call) or ConfigInvalid (a setup step the config asked for that cannot be
 * done); anything else is a SystemError carrying the original as its cause.
 */
import { LifecycleError } from '../errors/index.js';
import type { HookError, KernelError, SetupError } from '../kernel/index.js';

/**
 * Whether `e` is the kernel layer's error class `name` (each sets its name). By name, not instanceof, so that
 * mapping an error does not load the spawn engine and the hook runner into a process that never used them.
 */
function isKernelError<T extends Error>(e: unknown, name: string): e is T {
  return e instanceof Error && e.name === name;
}

/** The LifecycleError for anything thrown below a door. */
export function toLifecycleError(e: unknown): LifecycleError {
  if (e instanceof LifecycleError) return e;
  if (isKernelError<SetupError>(e, 'SetupError')) return new LifecycleError('ConfigInvalid', e.message, { field: e.field, cause: e, ...errnoOf(e) });
  if (isKernelError<HookError>(e, 'HookError')) return new LifecycleError('SystemError', e.message, { field: e.field, cause: e });
  if (isKernelError<KernelError>(e, 'KernelError')) return new LifecycleError('SystemError', e.message, { errno: e.errno, cause: e });
  if (e instanceof Error) {
    const field = (e as { field?: unknown }).field;
    return new LifecycleError('SystemError', e.message, { cause: e, ...errnoOf(e), ...(typeof field === 'string' ? { field } : {}) });
  }
  return new LifecycleError('SystemError', String(e), { cause: e });
}

/** errno of an error that has one (a kernel error's number, or a Node error's negative errno). */
function errnoOf(e: Error): { errno?: number } {
  const n = (e as { errno?: unknown }).errno;
  return typeof n === 'number' ? { errno: Math.abs(n) } : {};
}

/** Run `f` and throw whatever it throws as a LifecycleError. */
export async function typed<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw toLifecycleError(e);
  }
}
