/**
 * Replay: logged actions → machine events → the reducer; whole logs of interleaved containers; snapshots
 * from which a live machine resumes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { EVENT_ACTIONS, type EventAction, newEvent } from '../../events/schema.js';
import { type MachineEvent, type OpInput, type OpOutcome, type WatchInput, containerMachineWith } from '../../machines/container.js';
import { type CommandSpec, type ContainerEvent, type ContainerStateName, type LifecycleState, commandAllowed, initialLifecycle, reduce as applyEvent, transitionFor } from '../../machines/lifecycle.js';
import { type LoggedFact, applyFact, machineEventsOf, replayFacts } from '../../machines/replay.js';
import { snapshotOf, stateOf } from '../../machines/snapshot.js';
import { openJournal } from '../../actors/event-recorder.js';

const fact = (containerId: string, action: string, attributes: Record<string, unknown> = {}): LoggedFact => ({ containerId, action, attributes });

describe('machineEventsOf', () => {
  const CASES: Record<EventAction, Array<[Record<string, unknown>, ContainerEvent[]]>> = {
    create: [
      [{ pid: 1234 }, [{ type: 'created', pid: 1234 }]],
      [{}, [{ type: 'created', pid: 0 }]],
    ],
    start: [[{ pid: 1234 }, [{ type: 'start' }]]],
    pause: [[{}, [{ type: 'pause' }]]],
    resume: [[{}, [{ type: 'resume' }]]],
    checkpoint: [
      [{ imagePath: '/x' }, [{ type: 'checkpoint' }, { type: 'checkpointed' }]],
      [{ imagePath: '/x', leaveRunning: true }, []],
    ],
    restore: [
      [{ pid: 77 }, [{ type: 'restore' }, { type: 'restored', pid: 77 }]],
      [{}, [{ type: 'restore' }, { type: 'restored', pid: 0 }]],
      [{ pid: 78, fresh: true }, [{ type: 'restored', pid: 78 }]],
    ],
    exit: [
      [{ exitCode: 0, signal: null }, [{ type: 'exited', exitCode: 0, signal: null, oomKilled: false, unknown: false }]],
      [{ exitCode: 137, signal: 9, oomKilled: true }, [{ type: 'exited', exitCode: 137, signal: 9, oomKilled: true, unknown: false }]],
      [{ unknown: true }, [{ type: 'exited', exitCode: null, signal: null, oomKilled: false, unknown: true }]],
      [{ exitCode: '1', oomKilled: 'yes' }, [{ type: 'exited', exitCode: null, signal: null, oomKilled: false, unknown: false }]],
    ],
    oom: [[{}, [{ type: 'oom' }]]],
    kill: [
      [{ signal: 9 }, [{ type: 'kill', signal: 9 }]],
      [{}, [{ type: 'kill', signal: 15 }]],
    ],
    update: [[{ resources: {} }, [{ type: 'update' }]]],
    'exec-start': [[{ execId: 'e1', pid: 300 }, [{ type: 'exec-started', execId: 'e1', pid: 300 }]]],
    'exec-exit': [
      [{ execId: 'e1', exitCode: 2 }, [{ type: 'exec-exited', execId: 'e1', exitCode: 2 }]],
      [{ execId: 'e1' }, [{ type: 'exec-exited', execId: 'e1', exitCode: null }]],
    ],
    destroy: [[{}, [{ type: 'destroy', force: true }]]],
    error: [
      [{ message: 'mount failed', step: 'rootfs', errno: 13 }, [{ type: 'error', message: 'mount failed', step: 'rootfs', errno: 13 }]],
      [{ step: 42 }, [{ type: 'error', message: 'error', step: undefined, errno: undefined }]],
    ],
    // A hook run is a fact of the log that moves no machine.
    hook: [[{ point: 'poststop', index: 0, path: '/bin/true', ok: true }, []]],
  };

  it('covers every action of the event schema', () => {
    expect(Object.keys(CASES).sort()).toEqual([...EVENT_ACTIONS].sort());
  });

  for (const action of EVENT_ACTIONS) {
    it(`${action}`, () => {
      for (const [attrs, want] of CASES[action]) expect(machineEventsOf(fact('c', action, attrs)), JSON.stringify(attrs)).toEqual(want);
    });
  }

  it('an unknown action stands for no machine event', () => {
    expect(machineEventsOf(fact('c', 'reticulate'))).toEqual([]);
    const s = initialLifecycle('c');
    expect(applyFact(s, fact('c', 'reticulate'))).toBe(s);
  });

  it('destroy is replayed as forced: a log may record the destroy of a running container', () => {
    const running: LifecycleState = { value: 'running', context: { id: 'c', pid: 1, oomEvents: 0, execs: {} } };
    expect(applyFact(running, fact('c', 'destroy')).value).toBe('destroyed');
  });
});

/** A realistic log: five containers interleaved, with checkpoint/restore, execs, OOM, errors and destroys. */
const LOG: LoggedFact[] = [
  fact('web', 'create', { pid: 100 }),
  fact('db', 'create', { pid: 200 }),
  fact('web', 'start', { pid: 100 }),
  fact('broken', 'error', { message: 'pivot_root: EINVAL', step: 'rootfs', errno: 22 }),
  fact('db', 'start'),
  fact('web', 'exec-start', { execId: 'sh-1', pid: 101 }),
  fact('web', 'exec-start', { execId: 'sh-2', pid: 102 }),
  fact('batch', 'create', { pid: 300 }),
  fact('web', 'exec-exit', { execId: 'sh-1', exitCode: 0 }),
  fact('db', 'oom'),
  fact('web', 'pause'),
  fact('batch', 'error', { message: 'hook failed', step: 'createContainer' }),
  fact('web', 'resume'),
  fact('db', 'oom'),
  fact('batch', 'start'),
  fact('web', 'checkpoint', { imagePath: '/var/lib/cordon/web/ckpt' }),
  fact('db', 'exit', { exitCode: 137, signal: 9, oomKilled: true }),
  fact('web', 'restore', { pid: 150 }),
  fact('batch', 'kill', { signal: 15 }),
  fact('web', 'exec-start', { execId: 'sh-3', pid: 151 }),
  fact('batch', 'exit', { exitCode: null, signal: 15 }),
  fact('db', 'destroy'),
  fact('cache', 'create', { pid: 400 }),
  fact('cache', 'start'),
  fact('cache', 'checkpoint'),
  fact('web', 'update', { resources: { memory: 1 << 28 } }),
  fact('batch', 'destroy'),
];

const EXPECTED: Record<string, LifecycleState> = {
  web: { value: 'running', context: { id: 'web', pid: 150, oomEvents: 0, execs: { 'sh-3': { pid: 151 } } } },
  db: { value: 'destroyed', context: { id: 'db', pid: 200, oomEvents: 2, execs: {}, exit: { exitCode: 137, signal: 9, oomKilled: true, unknown: false } } },
  broken: { value: 'destroyed', context: { id: 'broken', oomEvents: 0, execs: {}, lastError: { message: 'pivot_root: EINVAL', step: 'rootfs', errno: 22 } } },
  batch: {
    value: 'destroyed',
    context: { id: 'batch', pid: 300, oomEvents: 0, execs: {}, exit: { exitCode: null, signal: 15, oomKilled: false, unknown: false }, lastError: { message: 'hook failed', step: 'createContainer' } },
  },
  cache: { value: 'checkpointed', context: { id: 'cache', oomEvents: 0, execs: {} } },
};

describe('replayFacts', () => {
  it('rebuilds every container of an interleaved log', () => {
    const states = replayFacts(LOG);
    expect([...states.keys()]).toEqual(['web', 'db', 'broken', 'batch', 'cache']); // first-seen order
    for (const [id, want] of Object.entries(EXPECTED)) {
      expect(states.get(id)!.value, id).toBe(want.value);
      expect(states.get(id)!.context, id).toEqual(want.context);
    }
  });

  it('intermediate states along the way are right too (web through checkpoint/restore)', () => {
    const webLog = LOG.filter((f) => f.containerId === 'web');
    const seen: Array<[string, ContainerStateName, number | undefined, string[]]> = [];
    let s = initialLifecycle('web');
    for (const f of webLog) {
      s = applyFact(s, f);
      seen.push([f.action, s.value, s.context.pid, Object.keys(s.context.execs)]);
    }
    expect(seen).toEqual([
      ['create', 'created', 100, []],
      ['start', 'running', 100, []],
      ['exec-start', 'running', 100, ['sh-1']],
      ['exec-start', 'running', 100, ['sh-1', 'sh-2']],
      ['exec-exit', 'running', 100, ['sh-2']],
      ['pause', 'paused', 100, ['sh-2']],
      ['resume', 'running', 100, ['sh-2']],
      ['checkpoint', 'checkpointed', undefined, []],
      ['restore', 'running', 150, []],
      ['exec-start', 'running', 150, ['sh-3']],
      ['update', 'running', 150, ['sh-3']],
    ]);
  });

  it('a fact the state cannot take is skipped, not a crash (a log of an older machine)', () => {
    const states = replayFacts([fact('x', 'create', { pid: 5 }), fact('x', 'resume'), fact('x', 'exec-start', { execId: 'e', pid: 6 }), fact('x', 'start')]);
    expect(states.get('x')).toEqual({ value: 'running', context: { id: 'x', pid: 5, oomEvents: 0, execs: {} } });
  });

  it('replays what the journal stored (CordonEvents are facts)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cordon-replay-'));
    try {
      const store = openJournal(path.join(dir, 'events.journal'));
      for (const f of LOG) await store.append([newEvent('node-a', f.containerId, f.action as EventAction, f.attributes)]);
      const states = replayFacts(await store.read());
      await store.close();
      for (const [id, want] of Object.entries(EXPECTED)) expect(states.get(id), id).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('snapshotOf and machines rebuilt from the log', () => {
  const COMMANDS_TRIED: CommandSpec[] = [
    { type: 'start' },
    { type: 'pause' },
    { type: 'resume' },
    { type: 'kill', signal: 9 },
    { type: 'update' },
    { type: 'exec' },
    { type: 'checkpoint' },
    { type: 'restore' },
    { type: 'destroy' },
    { type: 'destroy', force: true },
  ];

  /** A machine whose operations append their facts to a replayed state (as the host's actors append to the journal). */
  const stubs = (start: LifecycleState, seq: number) => {
    const started: string[] = [];
    let log = { seq, state: start };
    const append = (...facts: ContainerEvent[]): OpOutcome => {
      for (const f of facts) log = { seq: log.seq + 1, state: applyEvent(log.state, f) };
      return log;
    };
    const machine = containerMachineWith({
      pause: fromPromise<OpOutcome, OpInput>(async () => append({ type: 'pause' })),
      resume: fromPromise<OpOutcome, OpInput>(async () => append({ type: 'resume' })),
      destroy: fromPromise<OpOutcome, OpInput>(async () => append({ type: 'destroy', force: true })),
      restore: fromPromise<OpOutcome, OpInput>(async () => append({ type: 'restore' }, { type: 'restored', pid: 10 })),
      watchExit: fromCallback<MachineEvent, WatchInput>(({ input }) => {
        started.push(`exit:${input.pid}`);
        return () => {};
      }),
      watchOom: fromCallback<MachineEvent, WatchInput>(({ input }) => {
        started.push(`oom:${input.pid}`);
        return () => {};
      }),
    });
    return { machine, started, append, log: () => log };
  };

  const replayed = replayFacts(LOG);

  it.each(Object.keys(EXPECTED))('%s: value and context match; a machine rebuilt there takes exactly the commands the table allows', (id) => {
    const s = replayed.get(id)!;
    const snap = snapshotOf(s, 4);
    expect(stateOf(snap)).toBe(s.value);
    expect(snap.value).toBe(s.value);
    expect(snap.context).toEqual({ ...s.context, seq: 4 });

    const { machine } = stubs(s, 4);
    const actor = createActor(machine, { input: { id, state: s.value, context: s.context, seq: 4 } }).start();
    const live = actor.getSnapshot();
    expect(live.value).toBe(s.value);
    expect(live.context).toMatchObject({ ...s.context, seq: 4 });
    expect(live.status).toBe(s.value === 'destroyed' ? 'done' : 'active');
    for (const c of COMMANDS_TRIED) expect(live.can({ ...c, op: 1 }), `${s.value} can ${JSON.stringify(c)}`).toBe(commandAllowed(s.value, c));
    actor.stop();
  });

  it('a rebuilt running container goes on: its watchers get the replayed pid, pause/resume settle where the log is, an exit fact stops it', async () => {
    const s = replayed.get('web')!;
    const { machine, started, append } = stubs(s, 7);
    const actor = createActor(machine, { input: { id: 'web', state: s.value, context: s.context, seq: 7 } }).start();
    expect(started).toEqual(['exit:150', 'oom:150']); // entering the state invokes the watchers with the replayed pid
    actor.send({ type: 'pause', op: 1 });
    await waitFor(actor, (x) => x.value === 'paused', { timeout: 2000 });
    expect(Object.keys(actor.getSnapshot().children as Record<string, AnyActorRef>).sort()).toEqual(['exit-watch', 'oom-watch']);
    actor.send({ type: 'resume', op: 2 });
    await waitFor(actor, (x) => x.value === 'running', { timeout: 2000 });
    actor.send({ type: 'fact', action: 'exit', ...append({ type: 'exited', exitCode: 0, signal: null }) });
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(actor.getSnapshot().context).toMatchObject({ id: 'web', pid: 150, oomEvents: 0, execs: {}, exit: { exitCode: 0, signal: null, oomKilled: false, unknown: false }, seq: 10 });
    actor.send({ type: 'destroy', op: 3 });
    await waitFor(actor, (x) => x.status === 'done', { timeout: 2000 });
  });

  it('a rebuilt checkpointed container restores through the provided restore actor', async () => {
    const s = replayed.get('cache')!;
    const { machine, started } = stubs(s, 3);
    const actor = createActor(machine, { input: { id: 'cache', state: s.value, context: s.context, seq: 3 } }).start();
    actor.send({ type: 'restore', op: 1 });
    expect(actor.getSnapshot().value).toBe('restoring');
    await waitFor(actor, (x) => x.value === 'running', { timeout: 2000 });
    expect(actor.getSnapshot().context.pid).toBe(10);
    expect(started).toEqual(['exit:10', 'oom:10']);
    actor.stop();
  });
});
