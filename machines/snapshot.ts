/**
 * Replayed lifecycle states as xstate snapshots (kept apart from replay.ts so that recording an event does
 * not load xstate).
 */
import type { SnapshotFrom } from 'xstate';
import { type ContainerMachine, containerMachine, settledState } from './container.js';
import type { ContainerStateName, LifecycleState } from './lifecycle.js';

/** A container machine snapshot. */
export type ContainerSnapshot = SnapshotFrom<ContainerMachine>;

/** A machine snapshot in a replayed state, at the container's fact number `seq` (for createActor(machine, { snapshot })). */
export function snapshotOf(s: LifecycleState, seq = 0): ContainerSnapshot {
  return containerMachine().resolveState({ value: settledState(s.value), context: { ...s.context, seq } });
}

/** The state name of a snapshot. */
export function stateOf(s: ContainerSnapshot): ContainerStateName {
  return s.value as ContainerStateName;
}
