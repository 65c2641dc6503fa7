/**
 * The lifecycle table, its pure reducer and the xstate machine built from it: every state × every event
 * through the reducer; every settled state × every command through the machine (it takes exactly the
 * commands whose facts the table allows); random command sequences through the machine with stub actors
 * that record facts into a simulated log, agreeing with the reducer at every step; refusal codes; and the
 * live machine's invokes (explicit ids, watcher input, facts, failures, the exec child).
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { LifecycleError, refusal } from '../../machines/commands.js';
import { type MachineEvent, type OpInput, type OpOutcome, SETTLED_STATES, containerMachineWith, settledState } from '../../machines/container.js';
import { execMachineWith } from '../../machines/exec.js';
import {
  COMMANDS,
  type CommandSpec,
  type CommandType,
  type ContainerContext,
  type ContainerEvent,
  type ContainerStateName,
  LIFECYCLE,
  type LifecycleState,
  commandAllowed,
  factOfCommand,
  initialLifecycle,
  reduce,
  transitionFor,
} from '../../machines/lifecycle.js';
import { snapshotOf } from '../../machines/snapshot.js';import { mulberry32 } from '../fixtures/random.js';


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
    restored: { to: 'running', change: 'setPid' },
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
    checkpoint: { to: 'checkpointing', change: 'none' },
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

describe.each(STATES)('the reducer: state %s × every event', (state) => {
  it.each(EVENTS.map((ev) => [describeEvent(ev), ev] as const))('%s', (_name, ev) => {
    const s: LifecycleState = { value: state, context: BASE };
    const x = expected(state, ev);
    const r = reduce(s, ev);
    expect(transitionFor(state, ev) !== undefined).toBe(x !== undefined);
    if (x) {
      expect(r.value).toBe(x.to);
      expect(r.context).toEqual(expectedContext(BASE, ev, x.change));
    } else {
      expect(r).toBe(s); // the same object: nothing moved, nothing changed
      expect(r.context).toEqual(BASE);
    }
  });
});

/** Every command with the parameter variants the table's guards look at. */
const COMMAND_SPECS: CommandSpec[] = [
  ...(Object.keys(COMMANDS) as CommandType[]).filter((t) => t !== 'destroy' && t !== 'kill').map((type) => ({ type })),
  { type: 'kill', signal: 9 },
  { type: 'destroy' },
  { type: 'destroy', force: false },
  { type: 'destroy', force: true },
];

describe.each(SETTLED_STATES)('the machine: settled state %s × every command', (state) => {
  it.each(COMMAND_SPECS.map((c) => [JSON.stringify(c), c] as const))('%s', (_name, c) => {
    const legal = expected(state, factOfCommand(c)) !== undefined;
    expect(commandAllowed(state, c)).toBe(legal);
    const snap = snapshotOf({ value: state, context: BASE }, 5);
    expect(snap.value).toBe(state);
    // can() is the machine deciding: exactly the commands whose fact the table takes.
    expect(snap.can({ ...c, op: 1 })).toBe(legal);
    if (!legal) {
      const e = refusal('web-1', state, c);
      expect(e).toBeInstanceOf(LifecycleError);
      expect(e.message).toContain('web-1');
    }
  });
});

/** A simulated log for one container: stub actors append facts to it and say where it is, as the real ones do. */
class FakeLog {
  seq = 0;
  state: LifecycleState;
  constructor(id: string, state?: LifecycleState) {
    this.state = state ?? initialLifecycle(id);
  }
  append(...facts: ContainerEvent[]): OpOutcome {
    for (const f of facts) {
      const next = reduce(this.state, f);
      if (next === this.state && f.type !== 'error') throw new Error(`the log refuses ${f.type} in ${this.state.value}`);
      this.state = next;
      this.seq++;
    }
    return { seq: this.seq, state: this.state };
  }
  get outcome(): OpOutcome {
    return { seq: this.seq, state: this.state };
  }
}

interface Watch {
  input: { id: string; pid?: number };
  sendBack: (e: MachineEvent) => void;
  stopped: boolean;
}

/** The machine with stub actors over a FakeLog: each operation appends the command's fact (or fails, on request). */
function harness(log: FakeLog, opts: { fail?: Set<string>; createPid?: number; startIn?: LifecycleState; criu?: boolean } = {}) {
  const exitWatches: Watch[] = [];
  const oomWatches: Watch[] = [];
  const inputs: Array<{ src: string; input: unknown }> = [];
  const watcher = (into: Watch[]) =>
    fromCallback<MachineEvent, { id: string; pid?: number }>(({ input, sendBack }) => {
      const w: Watch = { input, sendBack: (e) => sendBack(e), stopped: false };
      into.push(w);
      return () => {
        w.stopped = true;
      };
    });
  const op = (src: string, facts: (i: OpInput) => ContainerEvent[]) =>
    fromPromise<OpOutcome, OpInput>(async ({ input }) => {
      inputs.push({ src, input });
      if (opts.fail?.has(src)) return { ...log.outcome, error: { code: 'SystemError', message: `${src} failed` } };
      return log.append(...facts(input));
    });
  const machine = containerMachineWith({
    create: fromPromise<OpOutcome, { id: string; op: number }>(async ({ input }) => {
      inputs.push({ src: 'create', input });
      if (opts.fail?.has('create')) return log.append({ type: 'error', message: 'pivot_root: EINVAL', step: 'create' });
      return log.append({ type: 'created', pid: opts.createPid ?? 42 });
    }),
    start: op('start', () => [{ type: 'start' }]),
    kill: op('kill', (i) => [{ type: 'kill', signal: i.command.signal ?? 15 }]),
    pause: op('pause', () => [{ type: 'pause' }]),
    resume: op('resume', () => [{ type: 'resume' }]),
    update: op('update', () => [{ type: 'update' }]),
    destroy: op('destroy', (i) => [...(['running', 'paused', 'created'].includes(log.state.value) ? [{ type: 'exited', exitCode: null, signal: 9 } as ContainerEvent] : []), { type: 'destroy', force: i.command.force }]),
    exec: execMachineWith({
      start: fromPromise(async ({ input }) => {
        inputs.push({ src: 'exec', input });
        if (opts.fail?.has('exec')) return { ...log.outcome, error: { code: 'SystemError', message: 'exec failed' } };
        return { execId: `x${input.op}`, pid: 300 + input.op, ...log.append({ type: 'exec-started', execId: `x${input.op}`, pid: 300 + input.op }) };
      }),
    }),
    ...(opts.criu
      ? {
          checkpoint: op('checkpoint', () => [{ type: 'checkpoint' }, { type: 'checkpointed' }]),
          restore: op('restore', () => [{ type: 'restore' }, { type: 'restored', pid: 77 }]),
        }
      : {}),
    watchExit: watcher(exitWatches),
    watchOom: watcher(oomWatches),
  });
  const actor = opts.startIn
    ? createActor(machine, { input: { id: 'web-1', state: opts.startIn.value, context: opts.startIn.context, seq: log.seq } })
    : createActor(machine, { input: { id: 'web-1', op: 1 } });
  const children = () => Object.keys(actor.getSnapshot().children as Record<string, AnyActorRef>).sort();
  let op_ = 10;
  /** Send a command as a door does: refused when can() is false, else wait for the machine to settle it. */
  const command = async (c: CommandSpec) => {
    const ev = { ...c, op: ++op_ };
    if (!actor.getSnapshot().can(ev)) throw refusal('web-1', String(actor.getSnapshot().value), c);
    actor.send(ev);
    return waitFor(actor, (s) => s.context.result?.op === ev.op, { timeout: 2000 });
  };
  return { actor, exitWatches, oomWatches, inputs, children, command };
}

describe('machine and reducer agree on random command sequences', () => {
  const FACTS: ContainerEvent[] = [
    { type: 'exited', exitCode: 0, signal: null },
    { type: 'exited', exitCode: 137, signal: 9, oomKilled: true },
    { type: 'oom' },
    { type: 'exec-exited', execId: 'x11', exitCode: 0 },
  ];
  const same = (a: ContainerContext, b: ContainerContext) =>
    isDeepStrictEqual({ pid: a.pid, exit: a.exit, oomEvents: a.oomEvents, execs: a.execs, lastError: a.lastError }, { pid: b.pid, exit: b.exit, oomEvents: b.oomEvents, execs: b.execs, lastError: b.lastError });

  it('400 seeded sequences of commands and observed facts: the machine settles where the log is, and takes exactly the legal commands', async () => {
    const rnd = mulberry32(0xc0ffee);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
    const visited = new Set<string>();
    const taken = new Set<string>();
    let steps = 0;
    for (let n = 0; n < 400; n++) {
      const log = new FakeLog('web-1');
      const h = harness(log, { criu: true });
      h.actor.start();
      await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
      const len = 4 + Math.floor(rnd() * 30);
      for (let i = 0; i < len; i++) {
        const settled = settledState(log.state.value);
        const trail = `sequence ${n}, step ${i}, in ${settled}`;
        if (rnd() < 0.25) {
          // A fact another process (or a watcher) appended: it reaches the machine as a `fact` event.
          const f = pick(FACTS);
          if (!transitionFor(log.state.value, f)) continue;
          h.actor.send({ type: 'fact', action: f.type, ...log.append(f) });
        } else {
          const c = pick(COMMAND_SPECS);
          const legal = commandAllowed(settled, c);
          const can = h.actor.getSnapshot().can({ ...c, op: 0 });
          if (can !== legal) expect(can, `${trail}: can(${JSON.stringify(c)})`).toBe(legal);
          if (!legal) {
            await expect(h.command(c)).rejects.toBeInstanceOf(LifecycleError);
            continue;
          }
          taken.add(`${settled}:${c.type}`);
          const s = await h.command(c);
          if (!s.context.result?.ok) expect(s.context.result, trail).toMatchObject({ ok: true });
        }
        steps++;
        const s = h.actor.getSnapshot();
        if (s.value !== settledState(log.state.value)) expect(s.value, trail).toBe(settledState(log.state.value));
        if (log.state.value !== 'destroyed' && !same(s.context, log.state.context)) expect(s.context, trail).toMatchObject(log.state.context);
        if (s.context.seq !== log.seq) expect(s.context.seq, trail).toBe(log.seq);
        visited.add(String(s.value));
        if (s.value === 'destroyed') break;
      }
      h.actor.stop();
    }
    expect([...visited].sort()).toEqual(['checkpointed', 'created', 'destroyed', 'paused', 'running', 'stopped']);
    for (const t of ['created:start', 'created:kill', 'created:destroy', 'running:pause', 'running:exec', 'running:update', 'running:checkpoint', 'checkpointed:restore', 'paused:resume', 'paused:destroy', 'stopped:destroy']) expect([...taken]).toContain(t);
    expect(steps, [...taken].sort().join(" ")).toBeGreaterThan(600);
  });
});

describe('refusal()', () => {
  const code = (state: ContainerStateName | string, c: CommandSpec) => {
    // refusal() is for commands the machine cannot take: check that first.
    if ((SETTLED_STATES as readonly string[]).includes(state)) expect(commandAllowed(state as ContainerStateName, c)).toBe(false);
    const e = refusal('web-1', state, c);
    expect(e).toBeInstanceOf(LifecycleError);
    expect(e.state).toBe(state);
    expect(e.message).toContain('web-1');
    return e.code;
  };

  it('start twice → ContainerNotStopped', () => {
    expect(code('running', { type: 'start' })).toBe('ContainerNotStopped');
  });
  it('start a stopped container → ContainerNotRunning', () => {
    expect(code('stopped', { type: 'start' })).toBe('ContainerNotRunning');
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
  it('exec into a stopped container → ContainerNotRunning; into a paused one → ContainerPaused', () => {
    expect(code('stopped', { type: 'exec' })).toBe('ContainerNotRunning');
    expect(code('paused', { type: 'exec' })).toBe('ContainerPaused');
  });
  it('destroy a running container without force → ContainerNotStopped', () => {
    expect(code('running', { type: 'destroy' })).toBe('ContainerNotStopped');
    expect(code('running', { type: 'destroy', force: false })).toBe('ContainerNotStopped');
    expect(code('paused', { type: 'destroy' })).toBe('ContainerNotStopped');
  });
  it('any command while creating or while an operation runs → ContainerBusy', () => {
    for (const c of COMMAND_SPECS) {
      for (const busy of ['creating', 'pausing', 'signalling', 'destroying', 'exec-starting', 'checkpointing', 'restoring']) expect(code(busy, c), `${busy} ${JSON.stringify(c)}`).toBe('ContainerBusy');
    }
  });
  it('a command to a destroyed container → ContainerNotExists', () => {
    expect(code('destroyed', { type: 'start' })).toBe('ContainerNotExists');
  });
  it('resume of a non-paused container → ContainerNotPaused; a command to a paused one → ContainerPaused', () => {
    expect(code('created', { type: 'resume' })).toBe('ContainerNotPaused');
    expect(code('stopped', { type: 'resume' })).toBe('ContainerNotPaused');
    expect(code('paused', { type: 'start' })).toBe('ContainerNotStopped');
    expect(code('paused', { type: 'exec' })).toBe('ContainerPaused');
    // runc checkpoints a paused container (only created and stopped are refused): so does the table.
    expect(commandAllowed('paused', { type: 'checkpoint' })).toBe(true);
  });
});

describe('the live machine with stub actors', () => {
  it('creating invokes "create" with the ticket; created, running and paused invoke "exit-watch" / "oom-watch" with the pid', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log);
    h.actor.start();
    expect(h.actor.getSnapshot().value).toBe('creating');
    expect(h.children()).toEqual(['create']);
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    expect(h.inputs).toEqual([{ src: 'create', input: { id: 'web-1', op: 1 } }]);
    expect(h.actor.getSnapshot().context).toMatchObject({ pid: 42, seq: 1, result: { op: 1, ok: true } });
    expect(h.children()).toEqual(['exit-watch']);
    expect(h.exitWatches.map((w) => w.input)).toEqual([{ id: 'web-1', pid: 42 }]);

    // A command runs in its operation state, whose invoke is named after the verb, then settles.
    h.actor.send({ type: 'start', op: 2 });
    expect(h.actor.getSnapshot().value).toBe('starting');
    expect(h.children()).toEqual(['start']);
    await waitFor(h.actor, (s) => s.value === 'running', { timeout: 2000 });
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    expect(h.oomWatches.map((w) => w.input)).toEqual([{ id: 'web-1', pid: 42 }]);

    await h.command({ type: 'pause' });
    expect(h.actor.getSnapshot().value).toBe('paused');
    await h.command({ type: 'resume' });
    expect(h.actor.getSnapshot().value).toBe('running');
    // Exactly one live watcher of each kind at any time.
    expect(h.exitWatches.filter((w) => !w.stopped)).toHaveLength(1);
    expect(h.oomWatches.filter((w) => !w.stopped)).toHaveLength(1);
    h.actor.stop();
  });

  it('facts: a newer one moves the machine where the log is, an older or repeated one changes nothing', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log);
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    await h.command({ type: 'start' });
    const oom = log.append({ type: 'oom' });
    h.oomWatches.at(-1)!.sendBack({ type: 'fact', action: 'oom', ...oom });
    expect(h.actor.getSnapshot().context).toMatchObject({ oomEvents: 1, seq: 3 });
    expect(h.actor.getSnapshot().value).toBe('running');
    // The same fact again (the log's echo of a watcher's own fact): ignored.
    h.actor.send({ type: 'fact', action: 'oom', ...oom });
    expect(h.actor.getSnapshot().context.oomEvents).toBe(1);
    // An older one: ignored.
    h.actor.send({ type: 'fact', action: 'exit', seq: 2, state: { value: 'stopped', context: { id: 'web-1', oomEvents: 0, execs: {} } } });
    expect(h.actor.getSnapshot().value).toBe('running');

    const exit = log.append({ type: 'exited', exitCode: 137, signal: 9, oomKilled: true });
    h.exitWatches.at(-1)!.sendBack({ type: 'fact', action: 'exit', ...exit });
    const s = h.actor.getSnapshot();
    expect(s.value).toBe('stopped');
    expect(s.context).toMatchObject({ pid: 42, oomEvents: 1, execs: {}, exit: { exitCode: 137, signal: 9, oomKilled: true, unknown: false }, seq: 4 });
    expect(h.children()).toEqual([]);
    expect(h.exitWatches.every((w) => w.stopped) && h.oomWatches.every((w) => w.stopped)).toBe(true);

    await h.command({ type: 'destroy' });
    expect(h.actor.getSnapshot().value).toBe('destroyed');
    expect(h.actor.getSnapshot().status).toBe('done');
    // The log forgets a destroyed container's context; the machine keeps how it ended.
    expect(h.actor.getSnapshot().context.exit).toEqual({ exitCode: 137, signal: 9, oomKilled: true, unknown: false });
  });

  it('a create that fails (the error recorded) ends destroyed with lastError', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log, { fail: new Set(['create']) });
    h.actor.start();
    const s = await waitFor(h.actor, (x) => x.status === 'done', { timeout: 2000 });
    expect(s.value).toBe('destroyed');
    expect(s.context.lastError).toEqual({ message: 'pivot_root: EINVAL', step: 'create', errno: undefined });
    expect(h.exitWatches).toHaveLength(0);
  });

  it('a failed operation settles where the log is (unchanged) with the error as its result', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log, { fail: new Set(['pause']) });
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    await h.command({ type: 'start' });
    const s = await h.command({ type: 'pause' });
    expect(s.value).toBe('running');
    expect(s.context.result).toMatchObject({ ok: false, error: { code: 'SystemError', message: 'pause failed' } });
    h.actor.stop();
  });

  it('checkpoint and restore without provided actors go back where they were taken, with the error', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log);
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    await h.command({ type: 'start' });
    h.actor.send({ type: 'checkpoint', op: 50 });
    expect(h.actor.getSnapshot().value).toBe('checkpointing');
    expect(h.children()).toEqual(['checkpoint']);
    const s = await waitFor(h.actor, (x) => x.context.result?.op === 50, { timeout: 2000 });
    expect(s.value).toBe('running');
    expect(s.context.result).toEqual({ op: 50, ok: false, error: { code: 'SystemError', message: 'no checkpoint actor provided' } });
    h.actor.stop();
  });

  it('exec runs as a child machine: it reports its start (exec-start in the log) and later its exit as a fact', async () => {
    const log = new FakeLog('web-1');
    let exitOf: ((e: { type: 'exited'; exitCode: number | null; signal: number | null; seq: number; state: LifecycleState }) => void) | undefined;
    const h = harness(log);
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    await h.command({ type: 'start' });
    // Swap in an exec watcher that hands us its sendBack.
    const machine = containerMachineWith({
      exec: execMachineWith({
        start: fromPromise(async ({ input }) => ({ execId: 'x1', pid: 301, ...log.append({ type: 'exec-started', execId: 'x1', pid: 301 }), ...{ input: undefined } })),
        watchExit: fromCallback(({ sendBack }) => {
          exitOf = sendBack as typeof exitOf;
          return () => {};
        }),
      }),
      watchExit: fromCallback(() => () => {}),
    });
    const a = createActor(machine, { input: { id: 'web-1', state: 'running', context: log.state.context, seq: log.seq } }).start();
    a.send({ type: 'exec', op: 7 });
    expect(a.getSnapshot().value).toBe('exec-starting');
    const s = await waitFor(a, (x) => x.context.result?.op === 7, { timeout: 2000 });
    expect(s.value).toBe('running');
    expect(s.context.execs).toEqual({ x1: { pid: 301 } });
    const child = s.children['exec-7'] as AnyActorRef;
    expect(child.getSnapshot().value).toBe('running');
    exitOf!({ type: 'exited', exitCode: 3, signal: null, ...log.append({ type: 'exec-exited', execId: 'x1', exitCode: 3 }) });
    expect(a.getSnapshot().context.execs).toEqual({});
    expect(child.getSnapshot().status).toBe('done');
    expect(child.getSnapshot().context).toMatchObject({ exitCode: 3, execId: 'x1', pid: 301 });
    a.stop();
    h.actor.stop();
  });

  it('a command the machine cannot take changes nothing, and a second command while one runs is refused (busy)', async () => {
    const log = new FakeLog('web-1');
    const h = harness(log);
    h.actor.start();
    await waitFor(h.actor, (s) => s.value === 'created', { timeout: 2000 });
    const before = h.actor.getSnapshot();
    await expect(h.command({ type: 'pause' })).rejects.toMatchObject({ code: 'ContainerNotRunning' });
    await expect(h.command({ type: 'resume' })).rejects.toMatchObject({ code: 'ContainerNotPaused' });
    h.actor.send({ type: 'pause', op: 99 }); // sent anyway: not taken
    expect(h.actor.getSnapshot().value).toBe('created');
    expect(h.actor.getSnapshot().context).toEqual(before.context);
    h.actor.send({ type: 'start', op: 100 });
    expect(h.actor.getSnapshot().value).toBe('starting');
    await expect(h.command({ type: 'kill', signal: 9 })).rejects.toMatchObject({ code: 'ContainerBusy' });
    await waitFor(h.actor, (s) => s.value === 'running', { timeout: 2000 });
    h.actor.stop();
  });

  it('a machine rebuilt from the log enters its state (its watchers start), at the log seq', async () => {
    const log = new FakeLog('web-1', { value: 'paused', context: { ...BASE, id: 'web-1' } });
    log.seq = 9;
    const h = harness(log, { startIn: log.state });
    h.actor.start();
    expect(h.actor.getSnapshot().value).toBe('paused');
    expect(h.actor.getSnapshot().context.seq).toBe(9);
    expect(h.children()).toEqual(['exit-watch', 'oom-watch']);
    expect(h.exitWatches[0].input).toEqual({ id: 'web-1', pid: 100 });
    h.actor.stop();
  });
});
