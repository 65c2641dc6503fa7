/**
 * The lifecycle table, its pure reducer and the xstate machine built from it: every state × every event,
 * the same answer from both executions, random sequences through both, refusal codes, and the live
 * machine with stub actors (explicit invoke ids, watcher input, exits and failures).
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor, fromCallback, fromPromise, getInitialSnapshot, transition, waitFor } from 'xstate';
import { LifecycleError, refusal } from '../../machines/commands.js';
import { containerMachine } from '../../machines/container.js';
import {
  type ContainerContext,
  type ContainerEvent,
  type ContainerStateName,
  LIFECYCLE,
  type LifecycleState,
  initialLifecycle,
  reduce,
  transitionFor,
} from '../../machines/lifecycle.js';
import { snapshotOf } from '../../machines/snapshot.js';

const STATES: ContainerStateName[] = ['creating', 'created', 'running', 'paused', 'checkpointing', 'checkpointed', 'restoring', 'stopped', 'destroyed'];

/** Representative payloads: every event type, with the variants that matter (guards, exit kinds, ...). */
const EVENTS: ContainerEvent[] = [
  { type: 'created', pid: 4242 },
  { type: 'start' },
  { type: 'pause' },
  { type: 'resume' },
  { type: 'kill', signal: 9 },
  { type: 'kill', signal: 15 },
  { type: 'exited', exitCode: 0, signal: null },
  { type: 'exited', exitCode: null, signal: 9 },
  { type: 'exited', exitCode: 137, signal: 9, oomKilled: true },
  { type: 'exited', exitCode: null, signal: null, unknown: true },
  { type: 'oom' },
  { type: 'update' },
  { type: 'checkpoint' },
  { type: 'checkpointed' },
  { type: 'restore' },
  { type: 'restored', pid: 5151 },
  { type: 'exec-started', execId: 'e2', pid: 301 },
  { type: 'exec-exited', execId: 'e1', exitCode: 0 },
  { type: 'exec-exited', execId: 'unknown-exec', exitCode: 1 },
  { type: 'destroy' },
  { type: 'destroy', force: false },
  { type: 'destroy', force: true },
  { type: 'error', message: 'boom' },
  { type: 'error', message: 'mount failed', step: 'rootfs', errno: 13 },
];

const ALL_TYPES = [...new Set(EVENTS.map((e) => e.type))];
it('the payload list covers every event type of the machine', () => {
  expect(ALL_TYPES.sort()).toEqual(
    ['checkpoint', 'checkpointed', 'created', 'destroy', 'error', 'exec-exited', 'exec-started', 'exited', 'kill', 'oom', 'pause', 'restore', 'restored', 'resume', 'start', 'update'].sort(),
  );
});

/** A context that lets every update show: a pid, an exec, OOM count, an old exit and an old error. */
const BASE: ContainerContext = {
  id: 'c1',
  pid: 100,
  oomEvents: 2,
  execs: { e1: { pid: 201 } },
  exit: { exitCode: 3, signal: null, oomKilled: false, unknown: false },
  lastError: { message: 'old' },
};

type Change = 'none' | 'setPid' | 'clearPid' | 'recordExit' | 'countOom' | 'addExec' | 'removeExec' | 'recordError';
interface Expect {
  to: ContainerStateName;
  change: Change;
  /** Legal only with destroy { force: true }. */
  forced?: boolean;
}

/**
 * The expected lifecycle, written out independently of LIFECYCLE (ARCHITECTURE.md "State machine";
 * `error` is recorded without a move wherever a state does not handle it, except in `destroyed`).
 */
const SPEC: Record<ContainerStateName, Partial<Record<ContainerEvent['type'], Expect>>> = {
  creating: {
    created: { to: 'created', change: 'setPid' },
    error: { to: 'destroyed', change: 'recordError' },
  },
  created: {
    start: { to: 'running', change: 'none' },
    kill: { to: 'created', change: 'none' },
    update: { to: 'created', change: 'none' },
    exited: { to: 'stopped', change: 'recordExit' },
    destroy: { to: 'destroyed', change: 'none' },
    error: { to: 'created', change: 'recordError' },
  },
  running: {
    pause: { to: 'paused', change: 'none' },
    kill: { to: 'running', change: 'none' },
    update: { to: 'running', change: 'none' },
    oom: { to: 'running', change: 'countOom' },
    'exec-started': { to: 'running', change: 'addExec' },
    'exec-exited': { to: 'running', change: 'removeExec' },
    checkpoint: { to: 'checkpointing', change: 'none' },
    exited: { to: 'stopped', change: 'recordExit' },
    destroy: { to: 'destroyed', change: 'none', forced: true },
    error: { to: 'running', change: 'recordError' },
  },
  paused: {
    resume: { to: 'running', change: 'none' },
    kill: { to: 'paused', change: 'none' },
    update: { to: 'paused', change: 'none' },
    oom: { to: 'paused', change: 'countOom' },
    'exec-exited': { to: 'paused', change: 'removeExec' },
    exited: { to: 'stopped', change: 'recordExit' },
    destroy: { to: 'destroyed', change: 'none', forced: true },
    error: { to: 'paused', change: 'recordError' },
  },
  checkpointing: {
    checkpointed: { to: 'checkpointed', change: 'clearPid' },
    error: { to: 'running', change: 'recordError' },
  },
  checkpointed: {
    restore: { to: 'restoring', change: 'none' },
    destroy: { to: 'destroyed', change: 'none' },
    error: { to: 'checkpointed', change: 'recordError' },
  },
  restoring: {
    restored: { to: 'running', change: 'setPid' },
    error: { to: 'checkpointed', change: 'recordError' },
  },
  stopped: {
    destroy: { to: 'destroyed', change: 'none' },
    error: { to: 'stopped', change: 'recordError' },
  },
  destroyed: {},
};

/** The context an event should leave, computed by hand. */
function expectedContext(c: ContainerContext, ev: ContainerEvent, change: Change): ContainerContext {
  switch (change) {
    case 'none':
      return c;
    case 'setPid':
      return { ...c, pid: (ev as { pid: number }).pid, exit: undefined };
    case 'clearPid':
      return { ...c, pid: undefined, execs: {} };
    case 'recordExit': {
      const e = ev as Extract<ContainerEvent, { type: 'exited' }>;
      return { ...c, exit: { exitCode: e.exitCode, signal: e.signal, oomKilled: e.oomKilled === true, unknown: e.unknown === true }, execs: {} };
    }
    case 'countOom':
      return { ...c, oomEvents: c.oomEvents + 1 };
    case 'addExec': {
      const e = ev as Extract<ContainerEvent, { type: 'exec-started' }>;
      return { ...c, execs: { ...c.execs, [e.execId]: { pid: e.pid } } };
    }
    case 'removeExec': {
      const e = ev as Extract<ContainerEvent, { type: 'exec-exited' }>;
      return { ...c, execs: Object.fromEntries(Object.entries(c.execs).filter(([k]) => k !== e.execId)) };
    }
    case 'recordError': {
      const e = ev as Extract<ContainerEvent, { type: 'error' }>;
      return { ...c, lastError: { message: e.message, step: e.step, errno: e.errno } };
    }
  }
}

/** The expected outcome of `ev` in `state`, or undefined when the event is illegal there. */
function expected(state: ContainerStateName, ev: ContainerEvent): Expect | undefined {
  const x = SPEC[state][ev.type];
  if (!x) return undefined;
  if (x.forced && !(ev.type === 'destroy' && ev.force === true)) return undefined;
  return x;
}

const describeEvent = (ev: ContainerEvent) => JSON.stringify(ev);

/** xstate's pure step from a snapshot in `s`. */
function machineStep(s: LifecycleState, ev: ContainerEvent) {
  const snap = snapshotOf(s);
  const [next] = transition(containerMachine, snap, ev);
  return { before: snap, next };
}

describe('the table matches the written-out lifecycle', () => {
  it('LIFECYCLE has exactly the expected (state, event) entries and targets', () => {
    for (const state of STATES) {
      const fromTable = Object.entries(LIFECYCLE[state])
        .map(([type, t]) => `${type}->${t?.target ?? state}${t?.guard ? `[${t.guard}]` : ''}`)
        .sort();
      const fromSpec = Object.entries(SPEC[state])
        .filter(([type]) => !(type === 'error' && !LIFECYCLE[state].error)) // the default `error` rule is outside the table
        .map(([type, x]) => `${type}->${x!.to}${x!.forced ? '[forced]' : ''}`)
        .sort();
      expect(fromTable, state).toEqual(fromSpec);
    }
  });
});

describe.each(STATES)('state %s × every event', (state) => {
  it.each(EVENTS.map((ev) => [describeEvent(ev), ev] as const))('%s', (_name, ev) => {
    const s: LifecycleState = { value: state, context: BASE };
    const x = expected(state, ev);

    // The reducer.
    const r = reduce(s, ev);
    expect(transitionFor(state, ev) !== undefined).toBe(x !== undefined);
    if (x) {
      expect(r.value).toBe(x.to);
      expect(r.context).toEqual(expectedContext(BASE, ev, x.change));
    } else {
      expect(r).toBe(s); // the same object: nothing moved, nothing changed
      expect(r.context).toEqual(BASE);
    }

    // The xstate machine: same outcome, and can() says yes exactly for the legal ones.
    const { before, next } = machineStep(s, ev);
    expect(before.value).toBe(state);
    expect(before.can(ev)).toBe(x !== undefined);
    expect(next.value).toBe(x ? x.to : state);
    expect(next.context).toEqual(x ? expectedContext(BASE, ev, x.change) : BASE);
  });
});

describe('reducer and machine agree on random sequences', () => {
  /** mulberry32: a small seeded PRNG, so a failure is reproducible. */
  function prng(seed: number) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('2,000 seeded sequences give identical state values and contexts at every step', () => {
    const rnd = prng(0xc0ffee);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const visited = new Set<string>();
    const taken = new Set<string>();
    let steps = 0;
    let legalSteps = 0;
    for (let n = 0; n < 2000; n++) {
      const id = `c${n}`;
      // Half start fresh (creating), half from a random state with a rich context.
      let r: LifecycleState;
      let snap: ReturnType<typeof snapshotOf>;
      if (n % 2 === 0) {
        r = initialLifecycle(id);
        snap = getInitialSnapshot(containerMachine, { id });
      } else {
        r = { value: pick(STATES), context: { ...BASE, id } };
        snap = snapshotOf(r);
      }
      expect(snap.value).toBe(r.value);
      expect(snap.context).toEqual(r.context);
      const len = 2 + Math.floor(rnd() * 40);
      for (let i = 0; i < len; i++) {
        // Bias towards legal events so sequences get deep, but keep illegal ones in the mix.
        const legal = EVENTS.filter((e) => transitionFor(r.value, e));
        const ev = rnd() < 0.6 && legal.length ? pick(legal) : pick(EVENTS);
        const trail = `sequence ${n}, step ${i}, ${r.value} + ${describeEvent(ev)}`;
        const ok = transitionFor(r.value, ev) !== undefined;
        // Plain comparisons first (26k steps); expect() only to report a difference.
        if (snap.can(ev) !== ok) expect(snap.can(ev), trail).toBe(ok);
        if (ok) {
          legalSteps++;
          taken.add(`${r.value}:${ev.type}`);
        }
        const wasDestroyed = r.value === 'destroyed';
        r = reduce(r, ev);
        [snap] = transition(containerMachine, snap, ev);
        if (snap.value !== r.value) expect(snap.value, trail).toBe(r.value);
        if (!isDeepStrictEqual(snap.context, r.context)) expect(snap.context, trail).toStrictEqual(r.context);
        visited.add(r.value);
        steps++;
        if (wasDestroyed) break; // one event after the end is enough
      }
    }
    // The walk really explored the machine.
    expect([...visited].sort()).toEqual([...STATES].sort());
    const allLegal = STATES.flatMap((st) => Object.keys(SPEC[st]).map((t) => `${st}:${t}`));
    expect([...taken].sort()).toEqual(allLegal.sort()); // every legal transition was taken at least once
    expect(steps).toBeGreaterThan(8_000);
    expect(legalSteps).toBeGreaterThan(steps / 2);
  });
});

describe('refusal()', () => {
  const code = (state: ContainerStateName, ev: ContainerEvent) => {
    // refusal() is for commands the machine cannot take: check that first.
    expect(transitionFor(state, ev)).toBeUndefined();
    const e = refusal('web-1', state, ev);
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.state).toBe(state);
    expect(e.message).toContain('container web-1: cannot ' + ev.type);
    return e.code;
  };

  it('start twice → ContainerNotStopped', () => {
    const s = reduce(reduce(initialLifecycle('web-1'), { type: 'created', pid: 1 }), { type: 'start' });
    expect(s.value).toBe('running');
    expect(code(s.value, { type: 'start' })).toBe('ContainerNotStopped');
  });
  it('pause a stopped container → ContainerNotRunning', () => {
    expect(code('stopped', { type: 'pause' })).toBe('ContainerNotRunning');
  });
  it('pause a paused container → ContainerPaused', () => {
    expect(code('paused', { type: 'pause' })).toBe('ContainerPaused');
  });
  it('resume a running container → ContainerNotPaused', () => {
    expect(code('running', { type: 'resume' })).toBe('ContainerNotPaused');
  });
  it('destroy a running container without force → ContainerNotStopped', () => {
    expect(code('running', { type: 'destroy' })).toBe('ContainerNotStopped');
    expect(code('running', { type: 'destroy', force: false })).toBe('ContainerNotStopped');
    expect(code('paused', { type: 'destroy' })).toBe('ContainerNotStopped');
  });
  it('any command while creating (and the other busy states) → ContainerBusy', () => {
    for (const ev of [{ type: 'start' }, { type: 'pause' }, { type: 'resume' }, { type: 'kill', signal: 9 }, { type: 'destroy' }, { type: 'destroy', force: true }, { type: 'checkpoint' }, { type: 'restore' }, { type: 'update' }] as ContainerEvent[]) {
      expect(code('creating', ev), describeEvent(ev)).toBe('ContainerBusy');
      expect(code('checkpointing', ev), describeEvent(ev)).toBe('ContainerBusy');
      expect(code('restoring', ev), describeEvent(ev)).toBe('ContainerBusy');
    }
  });
  it('resume of a non-paused container → ContainerNotPaused; a command to a paused one → ContainerPaused', () => {
    expect(code('created', { type: 'resume' })).toBe('ContainerNotPaused');
    expect(code('stopped', { type: 'resume' })).toBe('ContainerNotPaused');
    expect(code('paused', { type: 'start' })).toBe('ContainerPaused');
    expect(code('paused', { type: 'checkpoint' })).toBe('ContainerPaused');
  });
});

describe('the live machine with stub actors', () => {
  interface Watch {
    input: { id: string; pid?: number };
    sendBack: (e: ContainerEvent) => void;
    stopped: boolean;
  }

  function harness(opts: { create?: () => Promise<{ pid: number }>; checkpoint?: () => Promise<void>; restore?: () => Promise<{ pid: number }> } = {}) {
    const exitWatches: Watch[] = [];
    const oomWatches: Watch[] = [];
    const createInputs: unknown[] = [];
    const watcher = (into: Watch[]) =>
      fromCallback<ContainerEvent, { id: string; pid?: number }>(({ input, sendBack }) => {
        const w: Watch = { input, sendBack: (e) => sendBack(e), stopped: false };
        into.push(w);
        return () => {
          w.stopped = true;
        };
      });
    const machine = containerMachine.provide({
      actors: {
        create: fromPromise<{ pid: number }, { id: string }>(async ({ input }) => {
          createInputs.push(input);
          return opts.create ? opts.create() : { pid: 42 };
        }),
        watchExit: watcher(exitWatches),
        watchOom: watcher(oomWatches),
        checkpoint: fromPromise<void, { id: string }>(async () => (opts.checkpoint ? opts.checkpoint() : undefined)),
        restore: fromPromise<{ pid: number }, { id: string }>(async () => (opts.restore ? opts.restore() : { pid: 77 })),
      },
    });
    const actor = createActor(machine, { input: { id: 'web-1' } });
    const children = () => Object.keys(actor.getSnapshot().children as Record<string, AnyActorRef>).sort();
    return { actor, exitWatches, oomWatches, createInputs, children };
  }

  it('creating invokes "create"; created, running and paused invoke "exit-watch" / "oom-watch" with the pid', async () => {
    const h = harness();
    h.actor.start();
    expect(h.actor.getSnapshot().value).toBe('creating');
    expect(h.children()).toEqual(['create']);

    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    expect(h.createInputs).toEqual([{ id: 'web-1' }]);
    expect(h.actor.getSnapshot().context.pid).toBe(42);
    expect(h.children()).toEqual(['exit-watch']);
    expect(h.exitWatches.map((w) => w.input)).toEqual([{ id: 'web-1', pid: 42 }]);

    h.actor.send({ type: 'start' });
    expect(h.actor.getSnapshot().value).toBe('running');
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    expect(h.exitWatches.at(-1)!.input).toEqual({ id: 'web-1', pid: 42 });
    expect(h.oomWatches.map((w) => w.input)).toEqual([{ id: 'web-1', pid: 42 }]);

    h.actor.send({ type: 'pause' });
    expect(h.actor.getSnapshot().value).toBe('paused');
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    h.actor.send({ type: 'resume' });
    expect(h.actor.getSnapshot().value).toBe('running');
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    // Exactly one live watcher of each kind at any time.
    expect(h.exitWatches.filter((w) => !w.stopped)).toHaveLength(1);
    expect(h.oomWatches.filter((w) => !w.stopped)).toHaveLength(1);
    h.actor.stop();
  });

  it('an `oom` sent by the watcher is counted, an `exited` moves to stopped with the exit recorded', async () => {
    const h = harness();
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    h.actor.send({ type: 'start' });
    h.actor.send({ type: 'exec-started', execId: 'x1', pid: 50 });
    h.oomWatches.at(-1)!.sendBack({ type: 'oom' });
    expect(h.actor.getSnapshot().context.oomEvents).toBe(1);
    expect(h.actor.getSnapshot().value).toBe('running');

    h.exitWatches.at(-1)!.sendBack({ type: 'exited', exitCode: 137, signal: 9, oomKilled: true });
    const s = h.actor.getSnapshot();
    expect(s.value).toBe('stopped');
    expect(s.context).toEqual({ id: 'web-1', pid: 42, oomEvents: 1, execs: {}, exit: { exitCode: 137, signal: 9, oomKilled: true, unknown: false } });
    expect(h.children()).toEqual([]);
    expect(h.exitWatches.every((w) => w.stopped) && h.oomWatches.every((w) => w.stopped)).toBe(true);

    h.actor.send({ type: 'destroy' });
    expect(h.actor.getSnapshot().value).toBe('destroyed');
    expect(h.actor.getSnapshot().status).toBe('done');
  });

  it('an exit in `created` (before start) is recorded too', async () => {
    const h = harness();
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    h.exitWatches.at(-1)!.sendBack({ type: 'exited', exitCode: 1, signal: null });
    expect(h.actor.getSnapshot().value).toBe('stopped');
    expect(h.actor.getSnapshot().context.exit).toEqual({ exitCode: 1, signal: null, oomKilled: false, unknown: false });
    h.actor.stop();
  });

  it('a create actor that rejects leads to destroyed with lastError', async () => {
    const h = harness({
      create: async () => {
        throw new Error('pivot_root: EINVAL');
      },
    });
    h.actor.start();
    const s = await waitFor(h.actor, (x) => x.status === 'done', { timeout: 2000 });
    expect(s.value).toBe('destroyed');
    expect(s.context.lastError).toEqual({ message: 'pivot_root: EINVAL', step: 'create', errno: undefined });
    expect(s.context.pid).toBeUndefined();
    expect(h.exitWatches).toHaveLength(0);
  });

  it('checkpoint and restore actors: done → checkpointed / running with the new pid; failures go back with lastError', async () => {
    let failCheckpoint = true;
    let failRestore = true;
    const h = harness({
      checkpoint: async () => {
        if (failCheckpoint) throw new Error('criu dump failed');
      },
      restore: async () => {
        if (failRestore) throw new Error('criu restore failed');
        return { pid: 77 };
      },
    });
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    h.actor.send({ type: 'start' });

    h.actor.send({ type: 'checkpoint' });
    expect(h.actor.getSnapshot().value).toBe('checkpointing');
    expect(h.children()).toEqual(['checkpoint']);
    let s = await waitFor(h.actor, (x) => x.value !== 'checkpointing', { timeout: 2000 });
    expect(s.value).toBe('running');
    expect(s.context.lastError).toEqual({ message: 'criu dump failed', step: 'checkpoint', errno: undefined });

    failCheckpoint = false;
    h.actor.send({ type: 'checkpoint' });
    s = await waitFor(h.actor, (x) => x.value !== 'checkpointing', { timeout: 2000 });
    expect(s.value).toBe('checkpointed');
    expect(s.context.pid).toBeUndefined();
    expect(h.children()).toEqual([]);

    h.actor.send({ type: 'restore' });
    expect(h.children()).toEqual(['restore']);
    s = await waitFor(h.actor, (x) => x.value !== 'restoring', { timeout: 2000 });
    expect(s.value).toBe('checkpointed');
    expect(s.context.lastError).toEqual({ message: 'criu restore failed', step: 'restore', errno: undefined });

    failRestore = false;
    h.actor.send({ type: 'restore' });
    s = await waitFor(h.actor, (x) => x.value !== 'restoring', { timeout: 2000 });
    expect(s.value).toBe('running');
    expect(s.context.pid).toBe(77);
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    expect(h.exitWatches.at(-1)!.input).toEqual({ id: 'web-1', pid: 77 });
    h.actor.stop();
  });

  it('an illegal command sent to the live actor changes nothing', async () => {
    const h = harness();
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    const before = h.actor.getSnapshot();
    h.actor.send({ type: 'pause' });
    h.actor.send({ type: 'resume' });
    h.actor.send({ type: 'restored', pid: 9 });
    expect(h.actor.getSnapshot().value).toBe('created');
    expect(h.actor.getSnapshot().context).toEqual(before.context);
    h.actor.stop();
  });
});
