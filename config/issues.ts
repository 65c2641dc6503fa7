/**
 * Collecting validation problems while walking a config: errors (which reject the bundle) and warnings
 * (which runc would log and carry on), plus the helpers that build JSON paths for them.
 */
import { ConfigError, type ConfigIssue } from './config-error.js';

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JSON path of property `key` under `parent`: `parent.key`, or `parent["key"]` when the key is not a plain identifier. */
export function childPath(parent: string, key: string): string {
  if (IDENTIFIER.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

/** JSON path of element `index` of the array at `parent`: `parent[index]`. */
export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** Accumulates errors and warnings for one config; throws them all at once with {@link Issues.throwIfAny}. */
export class Issues {
  /** Problems that make the config unusable. */
  readonly errors: ConfigIssue[] = [];
  /** Things runc accepts with a log line (`path: message`). */
  readonly warnings: string[] = [];

  /** Record an error at `path`. */
  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  /** Record a warning at `path`. */
  warn(path: string, message: string): void {
    this.warnings.push(path === '' ? message : `${path}: ${message}`);
  }

  /** Number of errors recorded so far (to tell whether a sub-check added any). */
  get errorCount(): number {
    return this.errors.length;
  }

  /** Throw a {@link ConfigError} carrying every error recorded, if there is any. */
  throwIfAny(): void {
    if (this.errors.length > 0) throw new ConfigError(this.errors);
  }
}
