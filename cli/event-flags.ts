/**
 * Flags of the lifecycle `events` verb, apart from its implementation so that parsing them loads nothing heavy.
 */
import type { FlagSpec } from './args.js';

/** Flags of `cordon events` without a container id. */
export const LIFECYCLE_EVENT_FLAGS: FlagSpec[] = [
  { name: 'filter', multi: true },
  { name: 'format' },
  { name: 'since' },
  { name: 'until' },
  { name: 'since-seq' },
  { name: 'no-follow', bool: true },
];
