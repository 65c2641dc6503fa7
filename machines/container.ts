/**
 * The container lifecycle as an xstate v5 machine (ARCHITECTURE.md, "State machine"), built from the
 * table in lifecycle.ts. Pure: creating, watching exits and OOMs, checkpointing and restoring are done by
 * actors provided from outside (`machine.provide({ actors })`), each invoked with an explicit id.
 */
import { type AnyEventObject, type InvokeConfig, assign, fromCallback, fromPromise, raise, setup } from 'xstate';
import { type ContainerContext, type ContainerEvent, type ContainerStateName, GUARDS, LIFECYCLE, UPDATES, type TransitionSpec } from './lifecycle.js';

export type { ContainerContext, ContainerEvent, ContainerStateName, ExitInfo } from './lifecycle.js';

/** Input of a container machine. */
export interface ContainerInput {
  id: string;
  /** Start in this state (a container adopted from a log) instead of `creating`. */
  state?: ContainerStateName;
  context?: Partial<ContainerContext>;
}

/** Input of the watcher actors. */
export interface WatchInput {
  id: string;
  pid?: number;
}

const errorMessage = (e: unknown) => String((e as Error)?.message ?? e);

const m = setup({
  types: {
    context: {} as ContainerContext,
    events: {} as ContainerEvent,
    input: {} as ContainerInput,
  },
  actors: {
    create: fromPromise<{ pid: number }, { id: string }>(async () => {
      throw new Error('no create actor provided');
    }),
    watchExit: fromCallback<ContainerEvent, WatchInput>(() => () => {}),
    watchOom: fromCallback<ContainerEvent, WatchInput>(() => () => {}),
    checkpoint: fromPromise<void, { id: string }>(async () => {
      throw new Error('no checkpoint actor provided');
    }),
    restore: fromPromise<{ pid: number }, { id: string }>(async () => {
      throw new Error('no restore actor provided');
    }),
  },
  guards: {
    forced: ({ event }) => GUARDS.forced(event),
  },
  actions: Object.fromEntries(Object.entries(UPDATES).map(([k, u]) => [k, assign(({ context, event }) => u(context, event))])) as Record<keyof typeof UPDATES, ReturnType<typeof assign<ContainerContext, ContainerEvent, undefined, ContainerEvent, never>>>,
});

const updateName = (u?: TransitionSpec['update']) => (u ? (Object.entries(UPDATES).find(([, f]) => f === u)?.[0] as keyof typeof UPDATES) : undefined);

function onFor(state: ContainerStateName): Record<string, { target?: string; guard?: 'forced'; actions?: keyof typeof UPDATES }> {
  const out: Record<string, { target?: string; guard?: 'forced'; actions?: keyof typeof UPDATES }> = {};
  for (const [type, t] of Object.entries(LIFECYCLE[state]) as Array<[string, TransitionSpec]>) {
    const spec: { target?: string; guard?: 'forced'; actions?: keyof typeof UPDATES } = {};
    if (t.target) spec.target = t.target;
    if (t.guard) spec.guard = t.guard;
    const a = updateName(t.update);
    if (a) spec.actions = a;
    out[type] = spec;
  }
  return out;
}

const watchers = [
  { id: 'exit-watch', src: 'watchExit', input: ({ context }: { context: ContainerContext }) => ({ id: context.id, pid: context.pid }) },
  { id: 'oom-watch', src: 'watchOom', input: ({ context }: { context: ContainerContext }) => ({ id: context.id, pid: context.pid }) },
] as const;

/** Invokes per state (explicit ids); results come back as the table's facts. */
const INVOKES: Partial<Record<ContainerStateName, unknown>> = {
  creating: {
    id: 'create', src: 'create', input: ({ context }: { context: ContainerContext }) => ({ id: context.id }),
    onDone: { actions: raise(({ event }: { event: AnyEventObject }) => ({ type: 'created' as const, pid: (event.output as { pid: number }).pid })) },
    onError: { actions: raise(({ event }: { event: AnyEventObject }) => ({ type: 'error' as const, message: errorMessage(event.error), step: 'create' })) },
  },
  created: [watchers[0]],
  running: watchers,
  paused: watchers,
  checkpointing: {
    id: 'checkpoint', src: 'checkpoint', input: ({ context }: { context: ContainerContext }) => ({ id: context.id }),
    onDone: { actions: raise({ type: 'checkpointed' as const }) },
    onError: { actions: raise(({ event }: { event: AnyEventObject }) => ({ type: 'error' as const, message: errorMessage(event.error), step: 'checkpoint' })) },
  },
  restoring: {
    id: 'restore', src: 'restore', input: ({ context }: { context: ContainerContext }) => ({ id: context.id }),
    onDone: { actions: raise(({ event }: { event: AnyEventObject }) => ({ type: 'restored' as const, pid: (event.output as { pid: number }).pid })) },
    onError: { actions: raise(({ event }: { event: AnyEventObject }) => ({ type: 'error' as const, message: errorMessage(event.error), step: 'restore' })) },
  },
};

const STATES = Object.keys(LIFECYCLE) as ContainerStateName[];

/**
 * The machine. Placeholder actors do nothing; the supervisor provides real ones: `create` (resolves
 * {pid}), `watchExit` / `watchOom` (callbacks that send `exited` / `oom`), `checkpoint`, `restore` ({pid}).
 * An `error` event is recorded in any state that does not handle it itself.
 */
export const containerMachine = m.createMachine({
  id: 'container',
  context: ({ input }) => ({ id: input.id, oomEvents: 0, execs: {}, ...input.context }),
  initial: 'creating',
  on: { error: { actions: 'recordError' } },
  states: Object.fromEntries(
    STATES.map((s) => [
      s,
      {
        ...(s === 'destroyed' ? { type: 'final' as const } : {}),
        ...(INVOKES[s] ? { invoke: INVOKES[s] as InvokeConfig<ContainerContext, ContainerEvent, never, never, never, never, never, never> } : {}),
        on: onFor(s),
      },
    ]),
  ) as Record<ContainerStateName, object>,
});

/** The machine's type. */
export type ContainerMachine = typeof containerMachine;
