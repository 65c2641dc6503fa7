/**
 * The container lifecycle as data: for each state, which events it takes, where they lead and how they
 * change the context. The xstate machine (container.ts) is built from this table, and so is the fast
 * pure reducer replay uses — one transition function, two executions (a test checks they agree).
 */

/** Exit of a container's init, as recorded. */
export interface ExitInfo {
  exitCode: number | null;
  signal: number | null;
  oomKilled: boolean;
  /** True when the supervisor found the process gone and could not learn how it ended. */
  unknown: boolean;
}

/** What the machine remembers about a container. */
export interface ContainerContext {
  id: string;
  pid?: number;
  exit?: ExitInfo;
  oomEvents: number;
  /** Running exec'd processes by exec id. */
  execs: Record<string, { pid: number }>;
  lastError?: { message: string; step?: string; errno?: number };
}

/** Events of the container machine: commands (start, pause, ...) and facts (created, exited, ...). */
export type ContainerEvent =
  | { type: 'created'; pid: number }
  | { type: 'start' }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'kill'; signal: number }
  | { type: 'exited'; exitCode: number | null; signal: number | null; oomKilled?: boolean; unknown?: boolean }
  | { type: 'oom' }
  | { type: 'update' }
  | { type: 'checkpoint' }
  | { type: 'checkpointed' }
  | { type: 'restore' }
  | { type: 'restored'; pid: number }
  | { type: 'exec-started'; execId: string; pid: number }
  | { type: 'exec-exited'; execId: string; exitCode: number | null }
  | { type: 'destroy'; force?: boolean }
  | { type: 'error'; message: string; step?: string; errno?: number };

/** The state names (ARCHITECTURE.md). */
export type ContainerStateName = 'creating' | 'created' | 'running' | 'paused' | 'checkpointing' | 'checkpointed' | 'restoring' | 'stopped' | 'destroyed';

/** A context change caused by an event (pure). */
export type ContextUpdate = (ctx: ContainerContext, ev: ContainerEvent) => ContainerContext;

/** One transition: target state (none: stay), a guard, a context update. */
export interface TransitionSpec {
  target?: ContainerStateName;
  guard?: 'forced';
  update?: ContextUpdate;
}

/** Named context updates. */
export const UPDATES = {
  setPid: (c, e) => (e.type === 'created' || e.type === 'restored' ? { ...c, pid: e.pid, exit: undefined } : c),
  clearPid: (c) => ({ ...c, pid: undefined, execs: {} }),
  recordExit: (c, e) => (e.type === 'exited' ? { ...c, exit: { exitCode: e.exitCode, signal: e.signal, oomKilled: e.oomKilled ?? false, unknown: e.unknown ?? false }, execs: {} } : c),
  countOom: (c) => ({ ...c, oomEvents: c.oomEvents + 1 }),
  addExec: (c, e) => (e.type === 'exec-started' ? { ...c, execs: { ...c.execs, [e.execId]: { pid: e.pid } } } : c),
  removeExec: (c, e) => {
    if (e.type !== 'exec-exited') return c;
    const execs = { ...c.execs };
    delete execs[e.execId];
    return { ...c, execs };
  },
  recordError: (c, e) => (e.type === 'error' ? { ...c, lastError: { message: e.message, step: e.step, errno: e.errno } } : c),
} satisfies Record<string, ContextUpdate>;

const stay = (update?: ContextUpdate): TransitionSpec => ({ update });

/** The lifecycle table. `error` is also taken in every state (recorded, no move) unless a state says otherwise. */
export const LIFECYCLE: Readonly<Record<ContainerStateName, Partial<Record<ContainerEvent['type'], TransitionSpec>>>> = {
  creating: {
    created: { target: 'created', update: UPDATES.setPid },
    // A container born by a restore under a new id (restore -b BUNDLE): its images become its running tree.
    restored: { target: 'running', update: UPDATES.setPid },
    error: { target: 'destroyed', update: UPDATES.recordError },
  },
  created: {
    start: { target: 'running' },
    kill: stay(),
    update: stay(),
    exited: { target: 'stopped', update: UPDATES.recordExit },
    destroy: { target: 'destroyed' },
  },
  running: {
    pause: { target: 'paused' },
    kill: stay(),
    update: stay(),
    oom: stay(UPDATES.countOom),
    'exec-started': stay(UPDATES.addExec),
    'exec-exited': stay(UPDATES.removeExec),
    checkpoint: { target: 'checkpointing' },
    exited: { target: 'stopped', update: UPDATES.recordExit },
    destroy: { target: 'destroyed', guard: 'forced' },
  },
  paused: {
    resume: { target: 'running' },
    kill: stay(),
    update: stay(),
    oom: stay(UPDATES.countOom),
    'exec-exited': stay(UPDATES.removeExec),
    // runc checkpoints a paused container too (CRIU takes the frozen tree as it is).
    checkpoint: { target: 'checkpointing' },
    exited: { target: 'stopped', update: UPDATES.recordExit },
    destroy: { target: 'destroyed', guard: 'forced' },
  },
  checkpointing: {
    checkpointed: { target: 'checkpointed', update: UPDATES.clearPid },
    error: { target: 'running', update: UPDATES.recordError },
  },
  checkpointed: {
    restore: { target: 'restoring' },
    destroy: { target: 'destroyed' },
  },
  restoring: {
    restored: { target: 'running', update: UPDATES.setPid },
    error: { target: 'checkpointed', update: UPDATES.recordError },
  },
  stopped: {
    destroy: { target: 'destroyed' },
  },
  destroyed: {},
};

/** Guards by name. */
export const GUARDS = {
  forced: (ev: ContainerEvent) => ev.type === 'destroy' && ev.force === true,
} as const;

/** A container's state and context, as replay keeps it. */
export interface LifecycleState {
  value: ContainerStateName;
  context: ContainerContext;
}

/** The state of a new container. */
export function initialLifecycle(id: string): LifecycleState {
  return { value: 'creating', context: { id, oomEvents: 0, execs: {} } };
}

/** The transition an event takes in a state, or undefined when the state does not accept it. */
export function transitionFor(state: ContainerStateName, ev: ContainerEvent): TransitionSpec | undefined {
  const t = LIFECYCLE[state][ev.type] ?? (ev.type === 'error' && state !== 'destroyed' ? stay(UPDATES.recordError) : undefined);
  if (!t) return undefined;
  if (t.guard && !GUARDS[t.guard](ev)) return undefined;
  return t;
}

/**
 * The commands a door can send a container, each with the fact whose legality decides it (the table above:
 * a command is legal in a state exactly when its fact is) and the operation state the machine runs it in.
 */
export const COMMANDS = {
  start: { fact: 'start', op: 'starting' },
  kill: { fact: 'kill', op: 'signalling' },
  pause: { fact: 'pause', op: 'pausing' },
  resume: { fact: 'resume', op: 'resuming' },
  update: { fact: 'update', op: 'updating' },
  exec: { fact: 'exec-started', op: 'exec-starting' },
  destroy: { fact: 'destroy', op: 'destroying' },
  checkpoint: { fact: 'checkpoint', op: 'checkpointing' },
  restore: { fact: 'restore', op: 'restoring' },
} as const satisfies Record<string, { fact: ContainerEvent['type']; op: string }>;

/** A command verb. */
export type CommandType = keyof typeof COMMANDS;

/** A command as a door sends it (the parameters the table's guards look at). */
export interface CommandSpec {
  type: CommandType;
  /** destroy: kill a live container first. */
  force?: boolean;
  /** kill: the signal. */
  signal?: number;
}

/** The fact event whose legality decides a command. */
export function factOfCommand(c: CommandSpec): ContainerEvent {
  switch (c.type) {
    case 'kill':
      return { type: 'kill', signal: c.signal ?? 15 };
    case 'destroy':
      return { type: 'destroy', force: c.force };
    case 'exec':
      return { type: 'exec-started', execId: '', pid: 0 };
    default:
      return { type: COMMANDS[c.type].fact } as ContainerEvent;
  }
}

/** Whether a container in `state` takes command `c` (the one rule every door's verbs go through). */
export function commandAllowed(state: ContainerStateName, c: CommandSpec): boolean {
  return transitionFor(state, factOfCommand(c)) !== undefined;
}

/** The pure reducer: the next state (the same object when the event is not accepted). */
export function reduce(s: LifecycleState, ev: ContainerEvent): LifecycleState {
  const t = transitionFor(s.value, ev);
  if (!t) return s;
  return { value: t.target ?? s.value, context: t.update ? t.update(s.context, ev) : s.context };
}
