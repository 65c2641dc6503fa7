/**
 * The checkpoint and restore facts in the log, without CRIU: what replay and the recorder make of them (a
 * checkpoint moves a running or paused container to checkpointed unless it left it running; a restore brings a
 * checkpointed one back, or — `fresh` — starts a new container's life running, also on a destroyed id), and
 * the CRIU options a container's config leads to.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventRecorder, openRecorderJournal } from '../../actors/event-recorder.js';
import { cgroupRoots, commonOptions } from '../../actors/verbs/criu-plan.js';
import { LifecycleError } from '../../errors/index.js';
import { commandAllowed } from '../../machines/lifecycle.js';
import { type LoggedFact, replayFacts } from '../../machines/replay.js';

const fact = (action: string, attributes: Record<string, unknown> = {}): LoggedFact => ({ containerId: 'c', action, attributes });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('replay of checkpoint and restore', () => {
  it('checkpoint: running or paused → checkpointed (no pid); with leaveRunning nothing moves; restore brings it back with the new pid', () => {
    const run = [fact('create', { pid: 10 }), fact('start')];
    expect(replayFacts([...run, fact('checkpoint', { imagePath: '/i' })]).get('c')).toMatchObject({ value: 'checkpointed', context: { pid: undefined } });
    expect(replayFacts([...run, fact('pause'), fact('checkpoint', { imagePath: '/i' })]).get('c')?.value).toBe('checkpointed');
    expect(replayFacts([...run, fact('checkpoint', { imagePath: '/i', leaveRunning: true })]).get('c')).toMatchObject({ value: 'running', context: { pid: 10 } });
    expect(replayFacts([...run, fact('checkpoint'), fact('restore', { pid: 20 })]).get('c')).toMatchObject({ value: 'running', context: { pid: 20 } });
  });

  it('a restore under a new id is born running, also on an id used before', () => {
    expect(replayFacts([fact('restore', { pid: 30, fresh: true })]).get('c')).toMatchObject({ value: 'running', context: { pid: 30 } });
    const reused = [fact('create', { pid: 1 }), fact('destroy'), fact('restore', { pid: 31, fresh: true })];
    expect(replayFacts(reused).get('c')).toMatchObject({ value: 'running', context: { pid: 31 } });
  });

  it('the machine takes checkpoint in running and paused only, restore in checkpointed only', () => {
    for (const s of ['running', 'paused'] as const) expect(commandAllowed(s, { type: 'checkpoint' })).toBe(true);
    for (const s of ['created', 'stopped', 'checkpointed', 'destroyed'] as const) expect(commandAllowed(s, { type: 'checkpoint' })).toBe(false);
    expect(commandAllowed('checkpointed', { type: 'restore' })).toBe(true);
    for (const s of ['created', 'running', 'paused', 'stopped'] as const) expect(commandAllowed(s, { type: 'restore' })).toBe(false);
  });
});

describe('the recorder', () => {
  it('refuses a leave-running checkpoint of a stopped container and a fresh restore of a live id; takes them where they belong', async () => {
    const d = mkdtempSync(path.join(tmpdir(), 'cordon-cp-facts-'));
    dirs.push(d);
    const store = openRecorderJournal(path.join(d, 'events.journal'));
    const r = new EventRecorder(store, 'h');
    await r.record('a', 'create', { pid: 1 });
    await r.record('a', 'start');
    await r.record('a', 'checkpoint', { leaveRunning: true, imagePath: '/i' });
    expect(r.logged('a').state.value).toBe('running');
    await r.record('a', 'checkpoint', { imagePath: '/i' });
    expect(r.logged('a').state.value).toBe('checkpointed');
    await expect(r.record('a', 'checkpoint', { leaveRunning: true })).rejects.toBeInstanceOf(LifecycleError);
    await expect(r.record('a', 'restore', { pid: 5, fresh: true })).rejects.toBeInstanceOf(LifecycleError);
    await r.record('a', 'restore', { pid: 5 });
    expect(r.logged('a').state).toMatchObject({ value: 'running', context: { pid: 5 } });
    await r.record('b', 'restore', { pid: 6, fresh: true });
    expect(r.logged('b').state.value).toBe('running');
    r.close();
    await store.close();
  });
});

describe('CRIU options', () => {
  it('refuses what CRIU cannot take, naming the flag', () => {
    expect(() => commonOptions({ manageCgroupsMode: 'sometimes' }, '/i')).toThrow(/--manage-cgroups-mode/);
    expect(() => commonOptions({ emptyNs: ['pid'] }, '/i')).toThrow(/--empty-ns/);
    expect(commonOptions({ emptyNs: ['network'], tcpEstablished: true, manageCgroupsMode: 'full' }, '/i')).toMatchObject({ imagesDir: '/i', workDir: '/i', emptyNs: ['network'], tcpEstablished: true, manageCgroupsMode: 'full' });
    expect(commonOptions({ workPath: '/w' }, '/i').workDir).toBe('/w');
  });

  it('cgroup roots are the directories relative to their hierarchy (as /proc/PID/cgroup has them)', () => {
    expect(cgroupRoots({ memory: '/sys/fs/cgroup/memory/cordon/x', 'cpu,cpuacct': '/sys/fs/cgroup/cpu,cpuacct/x' })).toEqual([
      { controller: 'memory', path: '/cordon/x' },
      { controller: 'cpu,cpuacct', path: '/x' },
    ]);
    expect(cgroupRoots({ unified: '/sys/fs/cgroup/a/b' })).toEqual([{ path: '/a/b' }]);
  });
});
