/**
 * The machine of an additional process in a container (exec): starting → running → exited, or failed when
 * it could not start. Pure: the `start` actor (spawn and join the container) and the `watchExit` actor
 * are provided from outside; each invoke has an explicit id.
 */
import { assign, fromCallback, fromPromise, setup } from 'xstate';

/** What the exec machine remembers. */
export interface ExecContext {
  containerId: string;
  execId: string;
  pid?: number;
  exitCode?: number | null;
  signal?: number | null;
  error?: string;
}

/** Events of the exec machine. */
export type ExecEvent = { type: 'exited'; exitCode: number | null; signal: number | null };

/** Input of the exec machine. */
export interface ExecInput {
  containerId: string;
  execId: string;
}

/** The exec machine; provide `start` (resolves {pid}) and `watchExit` (sends `exited`). */
export const execMachine = setup({
  types: { context: {} as ExecContext, events: {} as ExecEvent, input: {} as ExecInput },
  actors: {
    start: fromPromise<{ pid: number }, ExecInput>(async () => {
      throw new Error('no start actor provided');
    }),
    watchExit: fromCallback<ExecEvent, { containerId: string; execId: string; pid?: number }>(() => () => {}),
  },
}).createMachine({
  id: 'exec',
  context: ({ input }) => ({ containerId: input.containerId, execId: input.execId }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        id: 'start',
        src: 'start',
        input: ({ context }) => ({ containerId: context.containerId, execId: context.execId }),
        onDone: { target: 'running', actions: assign({ pid: ({ event }) => event.output.pid }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
    },
    running: {
      invoke: { id: 'exit-watch', src: 'watchExit', input: ({ context }) => ({ containerId: context.containerId, execId: context.execId, pid: context.pid }) },
      on: { exited: { target: 'exited', actions: assign({ exitCode: ({ event }) => event.exitCode, signal: ({ event }) => event.signal }) } },
    },
    exited: { type: 'final' },
    failed: { type: 'final' },
  },
});
