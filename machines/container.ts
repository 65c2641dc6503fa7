/**
 * The container lifecycle as an xstate v5 machine (ARCHITECTURE.md, "State machine"), built from the tables
 * in lifecycle.ts. It drives every verb: a command is taken only where the table allows it (elsewhere
 * `can()` is false and the door answers with machines/commands.ts's refusal), moves the machine into the
 * command's operation state (`pausing`, `signalling`, ...), whose invoked actor does the kernel work and
 * appends the fact; the actor's outcome — where the log now has the container — settles the machine in
 * that state. Facts the machine did not cause (another process's verb, an exit its watcher saw) arrive as
 * `fact` events carrying the log's state after them. Pure: the actors are provided from outside
 * (`machine.provide({ actors })`), each invoked with an explicit id.
 */
import { type AnyEventObject, assign, fromCallback, fromPromise, setup, spawnChild } from 'xstate';
import { type ExecMachine, execMachineWith } from './exec.js';
import { COMMANDS, type CommandSpec, type CommandType, type ContainerContext, type ContainerStateName, type LifecycleState, commandAllowed } from './lifecycle.js';

export type { ContainerContext, ContainerEvent, ContainerStateName, ExitInfo, LifecycleState } from './lifecycle.js';

/** Where the log has a container: its lifecycle state after the container's fact number `seq`. */
export interface Settled {
  seq: number;
  state: LifecycleState;
}

/** A plain error as the machine keeps it (code and message; the door holds the error object). */
export interface OpError {
  code: string;
  message: string;
}

/** The outcome of an operation: where it left the container, and why it failed if it did. */
export interface OpOutcome extends Settled {
  error?: OpError;
}

/** What the machine remembers: the log's context, the fact it is at, and its operation in progress or last result. */
export interface MachineContext extends ContainerContext {
  /** containerSeq of the last fact the machine reflects. */
  seq: number;
  /** The operation in progress (its ticket, verb and the state it was taken in). */
  op?: { op: number; type: CommandType | 'create'; from: ContainerStateName };
  /** The last finished operation. */
  result?: { op: number; ok: boolean; error?: OpError };
  /** Where the `settling` step goes next (set by the outcome or fact that led there). */
  next?: Stable;
}

/** A command as the machine takes it: the verb's parameters the table looks at, and a ticket (`op`) the door waits on. */
export type ContainerCommand = CommandSpec & { op: number };

/** A fact the machine did not cause itself, or one its watchers recorded: the log's state after it. */
export interface FactEvent extends Settled {
  type: 'fact';
  action: string;
}

/** The exec child's report of its start (exec-start recorded) or its failure to start. */
export interface ExecReport extends OpOutcome {
  type: 'exec-started' | 'exec-failed';
  op: number;
}

/** Events of the container machine. */
export type MachineEvent = ContainerCommand | FactEvent | ExecReport;

/** Input of a container machine. */
export interface ContainerInput {
  id: string;
  /** For a new container: the ticket of its create. */
  op?: number;
  /** Start in this state (a container rebuilt from the log) instead of `creating`. */
  state?: ContainerStateName;
  context?: Partial<ContainerContext>;
  /** The containerSeq that state is at. */
  seq?: number;
}

/** Input of an operation actor: the container, the ticket, the command. */
export interface OpInput {
  id: string;
  op: number;
  command: ContainerCommand;
}

/** Input of the create actor. */
export interface CreateInput {
  id: string;
  op: number;
}

/** Input of the watcher actors. */
export interface WatchInput {
  id: string;
  pid?: number;
}

/** The lifecycle states a machine settles in between operations. */
export const SETTLED_STATES = ['created', 'running', 'paused', 'checkpointed', 'stopped', 'destroyed'] as const;

type Stable = (typeof SETTLED_STATES)[number];

/** The settled state a lifecycle state stands for (the log never rests in creating, checkpointing or restoring). */
export function settledState(v: ContainerStateName): Stable {
  if (v === 'creating') return 'destroyed';
  if (v === 'checkpointing') return 'running';
  if (v === 'restoring') return 'checkpointed';
  return v;
}

const notProvided = (what: string) => async (): Promise<OpOutcome> => {
  throw new Error(`no ${what} actor provided`);
};

/** The actors a container machine invokes; the defaults throw or do nothing (provide real ones). */
const ACTORS = {
  create: fromPromise<OpOutcome, CreateInput>(notProvided('create')),
  start: fromPromise<OpOutcome, OpInput>(notProvided('start')),
  kill: fromPromise<OpOutcome, OpInput>(notProvided('kill')),
  pause: fromPromise<OpOutcome, OpInput>(notProvided('pause')),
  resume: fromPromise<OpOutcome, OpInput>(notProvided('resume')),
  update: fromPromise<OpOutcome, OpInput>(notProvided('update')),
  destroy: fromPromise<OpOutcome, OpInput>(notProvided('destroy')),
  checkpoint: fromPromise<OpOutcome, OpInput>(notProvided('checkpoint')),
  restore: fromPromise<OpOutcome, OpInput>(notProvided('restore')),
  exec: undefined as unknown as ExecMachine,
  watchExit: fromCallback<MachineEvent, WatchInput>(() => () => {}),
  watchOom: fromCallback<MachineEvent, WatchInput>(() => () => {}),
};

/** The actors of a container machine, by the names its states invoke. */
export type ContainerActors = typeof ACTORS;

type Ctx = { context: MachineContext; event: AnyEventObject };

/** The context after an outcome or fact: the log's context, its seq, and (for an operation) the result. */
function settleContext(context: MachineContext, o: OpOutcome, withResult: boolean): MachineContext {
  // The log forgets a destroyed container's context; its machine keeps the last one (how it ended).
  const base = settledState(o.state.value) === 'destroyed' ? { ...context, ...o.state.context, op: undefined, result: undefined } : o.state.context;
  const next: MachineContext = { ...base, seq: o.seq, next: settledState(o.state.value) };
  if (withResult && context.op) next.result = { op: context.op.op, ok: !o.error, ...(o.error ? { error: o.error } : {}) };
  else if (context.result) next.result = context.result;
  return next;
}

/** The plain error of a failed actor (an Error) or of a report (already code and message). */
function opErrorOf(e: unknown): OpError {
  const x = e as { code?: unknown; message?: unknown } | undefined;
  if (x && typeof x.code === 'string' && typeof x.message === 'string' && !(e instanceof Error)) return { code: x.code, message: x.message };
  return { code: 'SystemError', message: String((e as Error)?.message ?? e) };
}

/** Settle an operation where its outcome says: `settling` routes to that state. */
const settleOn = (from: (e: AnyEventObject) => OpOutcome) => ({
  target: 'settling',
  actions: assign(({ context, event }: Ctx) => settleContext(context, from(event), true)),
});

/** An operation whose actor failed outright (not provided, crashed): back where it was taken, with the error. */
const failedBack = {
  target: 'settling',
  actions: assign(({ context, event }: Ctx) => ({
    op: undefined,
    next: context.op ? settledState(context.op.from) : undefined,
    result: { op: context.op?.op ?? 0, ok: false, error: opErrorOf((event as { error?: unknown }).error) },
  })),
};

/** A report that carries the log's state settles there; one without (the exec actor failed outright) goes back. */
const settleReport = [{ guard: ({ event }: Ctx) => (event as ExecReport).state !== undefined, ...settleOn((e) => e as ExecReport) }, failedBack];

/** In settled state `s`: a newer fact that keeps it there updates the context; one that moves it goes through `settling`. */
function factTransitions(s: Stable) {
  const newer = ({ context, event }: Ctx) => (event as FactEvent).seq > context.seq;
  const take = assign(({ context, event }: Ctx) => settleContext(context, event as FactEvent, false));
  return [
    { guard: (a: Ctx) => newer(a) && settledState((a.event as FactEvent).state.value) === s, actions: take },
    { guard: newer, target: 'settling', actions: take },
  ];
}

/** In settled state `s`: each command the table allows there enters its operation state. */
function commandTransitions(s: Stable) {
  const on: Record<string, object> = {};
  for (const [type, c] of Object.entries(COMMANDS) as Array<[CommandType, (typeof COMMANDS)[CommandType]]>) {
    // Only commands the state can ever take get a transition; the guard checks the parameters (destroy's force).
    if (!commandAllowed(s, { type, force: true })) continue;
    on[type] = {
      ...(type === 'destroy' ? { guard: ({ event }: Ctx) => commandAllowed(s, event as ContainerCommand) } : {}),
      target: c.op,
      actions: assign(({ event }: Ctx) => ({ op: { op: (event as ContainerCommand).op, type, from: s }, result: undefined })),
    };
  }
  return on;
}

const watchers = [
  { id: 'exit-watch', src: 'watchExit', input: ({ context }: Ctx) => ({ id: context.id, pid: context.pid }) },
  { id: 'oom-watch', src: 'watchOom', input: ({ context }: Ctx) => ({ id: context.id, pid: context.pid }) },
] as const;

const WATCHED: Partial<Record<Stable, readonly object[]>> = { created: [watchers[0]], running: watchers, paused: watchers };

const opInput = ({ context, event }: Ctx): OpInput => ({ id: context.id, op: context.op?.op ?? 0, command: event as ContainerCommand });

/** Operation states: each invokes its verb's actor and settles on its outcome. */
function operationStates(): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [type, c] of Object.entries(COMMANDS) as Array<[CommandType, (typeof COMMANDS)[CommandType]]>) {
    if (type === 'exec') {
      // The exec runs as a child machine of its own (machines/exec.ts); it reports its start here and lives on.
      out[c.op] = {
        entry: spawnChild('exec', {
          id: ({ context }: Ctx) => `exec-${context.op?.op ?? 0}`,
          input: ({ context }: Ctx) => ({ containerId: context.id, op: context.op?.op ?? 0 }),
        }),
        on: { 'exec-started': settleReport, 'exec-failed': settleReport },
      };
      continue;
    }
    out[c.op] = { invoke: { id: type, src: type, input: opInput, onDone: settleOn((e) => e.output as OpOutcome), onError: failedBack } };
  }
  return out;
}

/**
 * A container machine with these actors (the rest keep their placeholders). A new container starts
 * `creating` (its `create` actor builds it and records `create`); one rebuilt from the log (input.state)
 * enters that state through the `settling` step, so the state's watchers are invoked as on any entry.
 * Provide: create, start, kill, pause, resume, update, destroy, checkpoint, restore (each resolves with an
 * OpOutcome), exec (the exec machine with its actors), watchExit and watchOom (callbacks that send `fact`
 * events after recording an exit or an OOM kill).
 */
export function containerMachineWith(actors: Partial<ContainerActors> = {}) {
  const stable = Object.fromEntries(
    SETTLED_STATES.map((s) => [
      s,
      s === 'destroyed' ? { type: 'final' as const } : { ...(WATCHED[s] ? { invoke: WATCHED[s] } : {}), on: { ...commandTransitions(s), fact: factTransitions(s) } },
    ]),
  );
  return setup({
    types: { context: {} as MachineContext, events: {} as MachineEvent, input: {} as ContainerInput },
    actors: { ...ACTORS, ...actors, exec: actors.exec ?? execMachineWith() },
  }).createMachine({
    id: 'container',
    context: ({ input }) => ({
      id: input.id,
      oomEvents: 0,
      execs: {},
      ...input.context,
      seq: input.seq ?? 0,
      ...(input.state ? { next: settledState(input.state) } : { op: { op: input.op ?? 0, type: 'create' as const, from: 'destroyed' as const } }),
    }),
    initial: 'init',
    states: {
      init: { always: [{ guard: ({ context }: Ctx) => context.next !== undefined, target: 'settling' }, { target: 'creating' }] },
      // Where an outcome or a fact left the container (context.next): a routing step, no state of its own.
      settling: { always: SETTLED_STATES.map((s) => ({ guard: ({ context }: Ctx) => context.next === s, target: s })) },
      creating: { invoke: { id: 'create', src: 'create', input: ({ context }: Ctx) => ({ id: context.id, op: context.op?.op ?? 0 }), onDone: settleOn((e) => e.output as OpOutcome), onError: failedBack } },
      ...operationStates(),
      ...stable,
    } as Record<string, object>,
  });
}

let placeholder: ContainerMachine | undefined;

/** The machine with placeholder actors (tests, inspection of the definition); built on first use. */
export function containerMachine(): ContainerMachine {
  return (placeholder ??= containerMachineWith());
}

/** The machine's type. */
export type ContainerMachine = ReturnType<typeof containerMachineWith>;
