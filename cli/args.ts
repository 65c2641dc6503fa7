/**
 * Command-line parsing in the style of runc (urfave/cli): global flags before the verb, verb flags before
 * the positional arguments, `--flag value`, `--flag=value`, `-f value`, and boolean flags.
 */
import { LifecycleError } from '../errors/index.js';

/** A flag a verb accepts. */
export interface FlagSpec {
  /** Long name without dashes, e.g. "bundle". */
  name: string;
  /** Short aliases without dash, e.g. ["b"]. */
  short?: string[];
  /** true for a flag that takes no value. */
  bool?: boolean;
  /** May be given several times (values collected). */
  multi?: boolean;
}

/** Parsed flags and positional arguments. */
export interface ParsedArgs {
  flags: Record<string, string | boolean | string[]>;
  args: string[];
}

/** A usage error (exit code 1 with a message, as runc). */
export class UsageError extends LifecycleError {
  constructor(message: string) {
    super('BadRequest', message);
    this.name = 'UsageError';
  }
}

/** Parse argv against flag specs. Flags stop at the first positional argument or at "--". */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], opts: { stopAtPositional?: boolean } = {}): ParsedArgs {
  const flags: ParsedArgs['flags'] = {};
  const args: string[] = [];
  const find = (n: string) => specs.find((s) => s.name === n || s.short?.includes(n));
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      if (opts.stopAtPositional !== false) break;
      args.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = find(name);
    if (!spec) throw new UsageError(`flag provided but not defined: -${name}`);
    let value: string | boolean;
    if (spec.bool) {
      value = eq >= 0 ? body.slice(eq + 1) !== 'false' : true;
    } else if (eq >= 0) {
      value = body.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
      value = argv[++i];
    }
    if (spec.multi) {
      const prev = flags[spec.name];
      flags[spec.name] = [...(Array.isArray(prev) ? prev : []), String(value)];
    } else flags[spec.name] = value;
  }
  args.push(...argv.slice(i));
  return { flags, args };
}

/** A string flag's value, if given. */
export function str(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** A boolean flag's value. */
export function bool(p: ParsedArgs, name: string): boolean {
  return p.flags[name] === true;
}
