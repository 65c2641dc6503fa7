/**
 * The machine of an additional process in a container (exec), a child of the container's machine:
 * starting (its `start` actor joins the container, spawns the process and records exec-start) → running
 * (its `watchExit` actor records exec-exit) → exited, or failed when it could not start. It reports its start
 * or failure and its exit to its parent, the container machine, with where the log then has the container.
 * Pure: both actors are provided from outside; each invoke has an explicit id.
 */
import { type AnyEventObject, assign, fromCallback, fromPromise, sendParent, setup } from 'xstate';
import type { LifecycleState } from './lifecycle.js';

/** The log's state of the container after a fact (structurally machines/container.ts's Settled). */
interface SettledAt {
  seq: number;
  state: LifecycleState;
}

/** What the exec machine remembers. */
export interface ExecContext {
  containerId: string;
  /** The ticket of the container's exec command. */
  op: number;
  execId?: string;
  pid?: number;
  exitCode?: number | null;
  signal?: number | null;
  error?: string;
}

/** What the start actor resolves with: the process, or the error that kept it from starting. */
export interface ExecStarted extends SettledAt {
  execId?: string;
  pid?: number;
  error?: { code: string; message: string };
}

/** The exit the watcher saw and recorded. */
export interface ExecExited extends SettledAt {
  type: 'exited';
  exitCode: number | null;
  signal: number | null;
}

/** Events of the exec machine. */
export type ExecEvent = ExecExited;

/** Input of the exec machine. */
export interface ExecInput {
  containerId: string;
  op: number;
}

/** Input of the exec watcher. */
export interface ExecWatchInput {
  containerId: string;
  op: number;
  execId?: string;
  pid?: number;
}

const started = (e: AnyEventObject) => e.output as ExecStarted;

/** The exec machine's actors; the defaults throw or do nothing. */
const EXEC_ACTORS = {
  start: fromPromise<ExecStarted, ExecInput>(async () => {
    throw new Error('no start actor provided');
  }),
  watchExit: fromCallback<ExecEvent, ExecWatchInput>(() => () => {}),
};

/** The exec machine with these actors: `start` (resolves ExecStarted) and `watchExit` (sends `exited` once recorded). */
export function execMachineWith(actors: Partial<typeof EXEC_ACTORS> = {}) {
  return setup({
  types: { context: {} as ExecContext, events: {} as ExecEvent, input: {} as ExecInput },
  actors: { ...EXEC_ACTORS, ...actors },
}).createMachine({
  id: 'exec',
  context: ({ input }) => ({ containerId: input.containerId, op: input.op }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        id: 'start',
        src: 'start',
        input: ({ context }) => ({ containerId: context.containerId, op: context.op }),
        onDone: [
          {
            guard: ({ event }) => started(event).error !== undefined,
            target: 'failed',
            actions: [
              assign({ error: ({ event }) => started(event).error?.message }),
              sendParent(({ context, event }) => ({ type: 'exec-failed' as const, op: context.op, seq: started(event).seq, state: started(event).state, error: started(event).error })),
            ],
          },
          {
            target: 'running',
            actions: [
              assign({ pid: ({ event }) => started(event).pid, execId: ({ event }) => started(event).execId }),
              sendParent(({ context, event }) => ({ type: 'exec-started' as const, op: context.op, seq: started(event).seq, state: started(event).state })),
            ],
          },
        ],
        onError: {
          target: 'failed',
          actions: [
            assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }),
            sendParent(({ context, event }) => ({ type: 'exec-failed' as const, op: context.op, error: { code: 'SystemError', message: String((event.error as Error)?.message ?? event.error) } })),
          ],
        },
      },
    },
    running: {
      invoke: { id: 'exit-watch', src: 'watchExit', input: ({ context }) => ({ containerId: context.containerId, op: context.op, execId: context.execId, pid: context.pid }) },
      on: {
        exited: {
          target: 'exited',
          actions: [
            assign({ exitCode: ({ event }) => event.exitCode, signal: ({ event }) => event.signal }),
            sendParent(({ event }) => ({ type: 'fact' as const, action: 'exec-exit', seq: event.seq, state: event.state })),
          ],
        },
      },
    },
    exited: { type: 'final' },
    failed: { type: 'final' },
  },
});
}

/** The exec machine's type. */
export type ExecMachine = ReturnType<typeof execMachineWith>;

let placeholder: ExecMachine | undefined;

/** The exec machine with placeholder actors; built on first use. */
export function execMachine(): ExecMachine {
  return (placeholder ??= execMachineWith());
}
