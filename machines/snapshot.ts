/**
 * Replayed lifecycle states as xstate snapshots (kept apart from replay.ts so that recording an event does
 * not load xstate).
 */
import type { SnapshotFrom } from 'xstate';
import { containerMachine } from './container.js';
import type { ContainerStateName, LifecycleState } from './lifecycle.js';

/** A container machine snapshot. */
export type ContainerSnapshot = SnapshotFrom<typeof containerMachine>;

/** A machine snapshot in a replayed state (for createActor(machine, { snapshot })). */
export function snapshotOf(s: LifecycleState): ContainerSnapshot {
  return containerMachine.resolveState({ value: s.value, context: s.context });
}

/** The state name of a snapshot. */
export function stateOf(s: ContainerSnapshot): ContainerStateName {
  return s.value as ContainerStateName;
}
