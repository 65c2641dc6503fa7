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
  actions: {
    ...(Object.fromEntries(Object.entries(UPDATES).map(([k, u]) => [k, assign(({ context, event }) => u(context, event))])) as Record<keyof typeof UPDATES, ReturnType<typeof assign<ContainerContext, ContainerEvent, undefined, ContainerEvent, never>>>),
    /** A legal event that neither moves nor changes the context (kill, update): xstate treats a transition with no target and no action as forbidden (`can()` false), so it gets this one. */
    accept: () => {},
  },
});

const updateName = (u?: TransitionSpec['update']) => (u ? (Object.entries(UPDATES).find(([, f]) => f === u)?.[0] as keyof typeof UPDATES) : undefined);

type OnSpec = { target?: string; guard?: 'forced'; actions?: keyof typeof UPDATES | 'accept' };

function onFor(state: ContainerStateName): Record<string, OnSpec> {
  const out: Record<string, OnSpec> = {};
  for (const [type, t] of Object.entries(LIFECYCLE[state]) as Array<[string, TransitionSpec]>) {
    const spec: OnSpec = {};
    if (t.target) spec.target = t.target;
    if (t.guard) spec.guard = t.guard;
    const a = updateName(t.update) ?? (t.target ? undefined : 'accept');
    if (a) spec.actions = a;
    out[type] = spec;
  }
  // `destroyed` takes nothing, not even the root's `error` (the table's rule): an explicitly forbidden transition.
  if (state === 'destroyed') out.error = {};
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
  context: ({ input }) => ({ id: input.id, oomEvents: 0, execs: {}, ...input.context, ...(input.state ? { adoptAs: input.state } : {}) }),
  // A new container starts creating; one adopted from the log (input.state) enters its state through this
  // routing step, so the state's watchers are invoked as on any entry (restoring a snapshot would not).
  initial: 'init',
  on: { error: { actions: 'recordError' } },
  states: Object.fromEntries([
    ['init', { always: [...STATES.filter((s) => s !== 'creating').map((s) => ({ guard: ({ context }: { context: ContainerContext }) => context.adoptAs === s, target: s })), { target: 'creating' }] }],
    ...STATES.map((s) => [
      s,
      {
        ...(s === 'destroyed' ? { type: 'final' as const } : {}),
        ...(INVOKES[s] ? { invoke: INVOKES[s] as InvokeConfig<ContainerContext, ContainerEvent, never, never, never, never, never, never> } : {}),
        on: onFor(s),
      },
    ]),
  ]) as Record<ContainerStateName, object>,
});

/** The machine's type. */
export type ContainerMachine = typeof containerMachine;
