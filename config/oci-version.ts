/**
 * `ociVersion`: required, a semantic version with major 1. Versions 1.0.0 through 1.2.x are supported;
 * a later 1.x minor is accepted with a warning (additions are backwards compatible and unknown fields
 * are ignored); anything else is an error.
 */
import { describeValue } from './field-checks.js';
import type { Issues } from './issues.js';

/** A parsed semantic version. */
export interface SemanticVersion {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release suffix without the "-" ("rc5", "dev"), if any. */
  prerelease?: string;
}

/** Newest spec minor version (of major 1) this reader knows. */
export const NEWEST_SUPPORTED_MINOR = 2;

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

/** Parse "1.0.2-dev" style versions; undefined when `s` is not semver. */
export function parseSemanticVersion(s: string): SemanticVersion | undefined {
  const m = SEMVER.exec(s);
  if (m === null) return undefined;
  const v: SemanticVersion = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
  if (m[4] !== undefined) v.prerelease = m[4];
  return v;
}

/** Check `ociVersion`; returns the parsed version when it is acceptable. */
export function checkOciVersion(issues: Issues, raw: unknown): SemanticVersion | undefined {
  const p = 'ociVersion';
  if (raw === undefined || raw === null) {
    issues.error(p, 'required field is missing');
    return undefined;
  }
  if (typeof raw !== 'string') {
    issues.error(p, `expected a string, got ${describeValue(raw)}`);
    return undefined;
  }
  const v = parseSemanticVersion(raw);
  if (v === undefined) {
    issues.error(p, `${JSON.stringify(raw)} is not a semantic version (expected e.g. "1.2.0")`);
    return undefined;
  }
  if (v.major !== 1) {
    issues.error(p, `unsupported version ${JSON.stringify(raw)} (supported: 1.0.0 through 1.${NEWEST_SUPPORTED_MINOR}.x)`);
    return undefined;
  }
  if (v.minor > NEWEST_SUPPORTED_MINOR) {
    issues.warn(p, `version ${JSON.stringify(raw)} is newer than 1.${NEWEST_SUPPORTED_MINOR}.x; fields added since are ignored`);
  }
  return v;
}
