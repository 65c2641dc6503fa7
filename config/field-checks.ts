/**
 * Typed readers for untrusted JSON values: each checks one field's type and range, records an error naming
 * the field's path when it does not fit, and returns the value narrowed (or undefined).
 *
 * JSON `null` counts as absent, as Go's encoding/json (and so runc) treats it for optional fields.
 */
import type { Issues } from './issues.js';
import { indexPath } from './issues.js';

/** A plain JSON object. */
export type JsonObject = Record<string, unknown>;

/** An inclusive integer range a field must fall in. */
export interface IntRange {
  min: number;
  max: number;
}

/** Range of a uint32 field (uids, gids, modes). */
export const UINT32: IntRange = { min: 0, max: 0xffff_ffff };
/** Range of an int32 field. */
export const INT32: IntRange = { min: -0x8000_0000, max: 0x7fff_ffff };
/** Largest uint64, RLIM_INFINITY. */
export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
/** Range of int64 as bigints. */
export const INT64_MIN = -0x8000_0000_0000_0000n;
/** Largest int64. */
export const INT64_MAX = 0x7fff_ffff_ffff_ffffn;

/** A short rendering of a JSON value for messages: strings quoted, containers named. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** True for a missing field: undefined or JSON null. */
export function isAbsent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

/** True for a plain (non-array) object. */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Record "required field is missing" at `path`. */
export function missing(issues: Issues, path: string): void {
  issues.error(path, 'required field is missing');
}

/** An optional object field: undefined when absent, an error when not an object. */
export function readObject(issues: Issues, path: string, v: unknown): JsonObject | undefined {
  if (isAbsent(v)) return undefined;
  if (isJsonObject(v)) return v;
  issues.error(path, `expected an object, got ${describeValue(v)}`);
  return undefined;
}

/** A required object field. */
export function requireObject(issues: Issues, path: string, v: unknown): JsonObject | undefined {
  if (isAbsent(v)) {
    missing(issues, path);
    return undefined;
  }
  return readObject(issues, path, v);
}

/** An optional string field; strings with a NUL byte are rejected (they cannot reach a syscall intact). */
export function readString(issues: Issues, path: string, v: unknown): string | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string') {
    issues.error(path, `expected a string, got ${describeValue(v)}`);
    return undefined;
  }
  if (v.includes('\0')) {
    issues.error(path, 'must not contain a NUL byte');
    return undefined;
  }
  return v;
}

/** A required string field. */
export function requireString(issues: Issues, path: string, v: unknown): string | undefined {
  if (isAbsent(v)) {
    missing(issues, path);
    return undefined;
  }
  return readString(issues, path, v);
}

/** An optional boolean field; `fallback` when absent or wrong. */
export function readBoolean(issues: Issues, path: string, v: unknown, fallback: boolean): boolean {
  if (isAbsent(v)) return fallback;
  if (typeof v !== 'boolean') {
    issues.error(path, `expected true or false, got ${describeValue(v)}`);
    return fallback;
  }
  return v;
}

/** An optional array field. */
export function readArray(issues: Issues, path: string, v: unknown): unknown[] | undefined {
  if (isAbsent(v)) return undefined;
  if (!Array.isArray(v)) {
    issues.error(path, `expected an array, got ${describeValue(v)}`);
    return undefined;
  }
  return v;
}

/** An optional array of strings; bad elements are reported and left out. */
export function readStringArray(issues: Issues, path: string, v: unknown): string[] | undefined {
  const arr = readArray(issues, path, v);
  if (arr === undefined) return undefined;
  const out: string[] = [];
  arr.forEach((e, i) => {
    const p = indexPath(path, i);
    if (typeof e !== 'string') issues.error(p, `expected a string, got ${describeValue(e)}`);
    else if (e.includes('\0')) issues.error(p, 'must not contain a NUL byte');
    else out.push(e);
  });
  return out;
}

function integerKind(range: IntRange): string {
  return range.min >= 0 ? 'a non-negative integer' : 'an integer';
}

/**
 * An optional integer field within `range` (a JS number or a bigint from the config parser).
 * Type errors read `expected a non-negative integer, got "abc"`; range errors name the bounds.
 */
export function readInteger(issues: Issues, path: string, v: unknown, range: IntRange): number | undefined {
  if (isAbsent(v)) return undefined;
  let n: number;
  if (typeof v === 'bigint') {
    if (range.min >= 0 && v < 0n) {
      issues.error(path, `expected ${integerKind(range)}, got ${v}`);
      return undefined;
    }
    if (v < BigInt(range.min) || v > BigInt(range.max)) {
      issues.error(path, rangeMessage(range, v.toString()));
      return undefined;
    }
    n = Number(v);
  } else if (typeof v === 'number' && Number.isInteger(v)) {
    n = v;
  } else {
    issues.error(path, `expected ${integerKind(range)}, got ${describeValue(v)}`);
    return undefined;
  }
  if (range.min >= 0 && n < 0) {
    issues.error(path, `expected ${integerKind(range)}, got ${describeValue(v)}`);
    return undefined;
  }
  if (n < range.min || n > range.max) {
    issues.error(path, rangeMessage(range, String(v)));
    return undefined;
  }
  return n;
}

function rangeMessage(range: IntRange, shown: string): string {
  return range.min === 0 ? `must be at most ${range.max}, got ${shown}` : `must be between ${range.min} and ${range.max}, got ${shown}`;
}

/** A required integer field within `range`. */
export function requireInteger(issues: Issues, path: string, v: unknown, range: IntRange): number | undefined {
  if (isAbsent(v)) {
    missing(issues, path);
    return undefined;
  }
  return readInteger(issues, path, v, range);
}

/**
 * An optional 64-bit integer field as a bigint, within [min, max]. A JS number beyond 2^53 is rejected:
 * it has already lost precision (parse config.json with {@link parseConfigJson} to keep such values exact).
 */
export function readBigInteger(issues: Issues, path: string, v: unknown, min: bigint, max: bigint): bigint | undefined {
  if (isAbsent(v)) return undefined;
  const kind = min >= 0n ? 'a non-negative integer' : 'an integer';
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isInteger(v)) {
    if (!Number.isSafeInteger(v)) {
      issues.error(path, `${v} is beyond 2^53 and not exact as a JavaScript number; pass it as a bigint`);
      return undefined;
    }
    b = BigInt(v);
  } else {
    issues.error(path, `expected ${kind}, got ${describeValue(v)}`);
    return undefined;
  }
  if (min >= 0n && b < 0n) {
    issues.error(path, `expected ${kind}, got ${b}`);
    return undefined;
  }
  if (b < min || b > max) {
    issues.error(path, min === 0n ? `must be at most ${max}, got ${b}` : `must be between ${min} and ${max}, got ${b}`);
    return undefined;
  }
  return b;
}

/** A required 64-bit integer field as a bigint. */
export function requireBigInteger(issues: Issues, path: string, v: unknown, min: bigint, max: bigint): bigint | undefined {
  if (isAbsent(v)) {
    missing(issues, path);
    return undefined;
  }
  return readBigInteger(issues, path, v, min, max);
}

/** Check that a path string is absolute; records `must be an absolute path, got "x"` otherwise. */
export function checkAbsolute(issues: Issues, path: string, p: string): boolean {
  if (p.startsWith('/')) return true;
  issues.error(path, `must be an absolute path, got ${describeValue(p)}`);
  return false;
}
