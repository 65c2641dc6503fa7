/**
 * checkpoint and restore around CRIU, with CRIU itself replaced by a stand-in (real containers, real cgroups,
 * the real log): the machine's moves, the facts and their attributes, what `state`/`list` say of a
 * checkpointed container (runc: it does not exist), its cgroups gone and made again, a supervisor opened
 * afterwards knowing where the images are, and every failure leaving the container where it was with an
 * `error` fact. test/integration/checkpoint.test.ts runs the same verbs with the real CRIU.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ContainerHost } from '../../actors/container-host.js';
import { listStates, ociStateOf } from '../../actors/queries.js';
import { LifecycleError } from '../../errors/index.js';
import type { CriuDumpOptions, CriuRestoreOptions } from '../../kernel/index.js';
import { JournalStore } from '../../events/journal.js';
import { cgroupDirsOf } from '../fixtures/invariants.js';
import { Harness } from './harness.js';

const calls: { dump: CriuDumpOptions[]; restore: CriuRestoreOptions[] } = { dump: [], restore: [] };

vi.mock('../../kernel/index.js', async (original) => {
  const k = await original<typeof import('../../kernel/index.js')>();
  return {
    ...k,
    /** As CRIU: images written, post-dump notified, the tree killed unless left running; `fail` in the dir fails it. */
    criuDump: async (o: CriuDumpOptions) => {
      calls.dump.push(o);
      if (existsSync(join(o.imagesDir, 'fail'))) throw new Error('criu dump failed (stand-in)');
      writeFileSync(join(o.imagesDir, 'inventory.img'), 'x'.repeat(1000));
      if (!o.leaveRunning) {
        await o.notify?.('post-dump', {});
        process.kill(o.pid, 'SIGKILL');
      }
    },
    /** A new process stands for the restored tree; `damaged` in the images fails it. */
    criuRestore: async (o: CriuRestoreOptions) => {
      calls.restore.push(o);
      if (existsSync(join(o.imagesDir, 'damaged'))) throw new Error('criu restore failed (stand-in)');
      const p = spawn('sleep', ['1000'], { stdio: 'ignore', detached: true });
      p.unref();
      return { pid: p.pid as number };
    },
  };
});

const h = new Harness('criu-books');
const scratch = mkdtempSync('/tmp/cordon-it-criu-books-');
afterAll(async () => {
  await h.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function running(): Promise<string> {
  const b = h.bundle((s) => {
    s.process.args = ['sleep', '1000'];
    s.mounts = [...(s.mounts ?? []), { destination: '/data', type: 'bind', source: scratch, options: ['rbind'] }];
  });
  const id = h.nextId();
  const c = await h.containers();
  await c.create(id, { bundle: b.dir });
  await c.start(id);
  return id;
}

async function facts(c: ContainerHost, id: string, action: string): Promise<Array<Record<string, unknown>>> {
  if (c.store instanceof JournalStore) c.store.refresh();
  return (await c.store.read(1)).filter((e) => e.containerId === id && e.action === action).map((e) => e.attributes);
}

async function failure(p: Promise<unknown>): Promise<LifecycleError | Error | undefined> {
  return p.then(() => undefined, (e: unknown) => e as Error);
}

describe('checkpoint and restore bookkeeping (CRIU stand-in)', () => {
  it('checkpointed: no process, no cgroups, not in state or list; the fact says where the images are; restore brings it back', async () => {
    const c = await h.containers();
    const id = await running();
    const old = c.state.require(id).pid;
    const img = join(scratch, 'img1');
    const r = await c.checkpoint(id, { imagePath: img });
    const dump = calls.dump.at(-1) as CriuDumpOptions;
    // The bind mount is an external mount keyed by its destination; the freezer cgroup freezes the tree.
    expect(dump.externalMounts).toContainEqual({ key: '/data', value: '/data' });
    expect(dump.freezeCgroup).toMatch(/freezer|cgroup/);
    expect(r).toMatchObject({ imagePath: img, imagesBytes: 1000 + readFileSync(join(img, 'descriptors.json')).length, leaveRunning: false });
    expect(c.machineState(id)).toBe('checkpointed');
    expect(cgroupDirsOf(id)).toEqual([]);
    expect(() => ociStateOf(h.state, id)).toThrow(/does not exist.*checkpointed, images in/);
    expect(listStates(h.state).map((s) => s.id)).not.toContain(id);
    expect(await facts(c, id, 'checkpoint')).toEqual([expect.objectContaining({ imagePath: img, pid: old, leaveRunning: false })]);

    // A supervisor opened now knows it is checkpointed (the log) and where the images are (the fact, the state dir).
    const other = await ContainerHost.open({ root: h.root, watch: 'own' });
    expect(other.machineState(id)).toBe('checkpointed');
    await other.close();

    const rs = await c.restore(id);
    const rq = calls.restore.at(-1) as CriuRestoreOptions;
    expect(rq.imagesDir).toBe(img); // the default: where its checkpoint put them
    expect(rq.externalMounts).toContainEqual({ key: '/data', value: scratch });
    expect(rq.cgroupRoots?.length).toBeGreaterThan(0);
    expect(cgroupDirsOf(id).length).toBeGreaterThan(0); // made again
    expect(c.machineState(id)).toBe('running');
    expect(ociStateOf(h.state, id)).toMatchObject({ status: 'running', pid: rs.pid });
    expect(await facts(c, id, 'restore')).toEqual([expect.objectContaining({ pid: rs.pid, imagePath: img })]);
    await c.destroy(id, { force: true });
  });

  it('--leave-running: no move, the fact says so; a paused container is checkpointed as it is', async () => {
    const c = await h.containers();
    const id = await running();
    await c.checkpoint(id, { imagePath: join(scratch, 'img2'), leaveRunning: true });
    expect(c.machineState(id)).toBe('running');
    expect(await facts(c, id, 'checkpoint')).toEqual([expect.objectContaining({ leaveRunning: true })]);
    await c.pause(id);
    await c.checkpoint(id, { imagePath: join(scratch, 'img3') });
    expect(c.machineState(id)).toBe('checkpointed');
    await c.destroy(id);
    expect(existsSync(join(h.root, id))).toBe(false);
    expect(existsSync(join(scratch, 'img3', 'inventory.img'))).toBe(true); // delete leaves the images
  });

  it('failures: a failed dump leaves it running, a failed restore checkpointed with its images, each an error fact', async () => {
    const c = await h.containers();
    const id = await running();
    const img = join(scratch, 'img4');
    rmSync(img, { recursive: true, force: true });
    await c.checkpoint(id, { imagePath: img, leaveRunning: true });
    writeFileSync(join(img, 'fail'), '');
    expect((await failure(c.checkpoint(id, { imagePath: img })))?.message).toMatch(/stand-in.*dump\.log/);
    expect(c.machineState(id)).toBe('running');
    expect(ociStateOf(h.state, id).status).toBe('running');
    rmSync(join(img, 'fail'));
    await c.checkpoint(id, { imagePath: img });
    writeFileSync(join(img, 'damaged'), '');
    expect((await failure(c.restore(id)))?.message).toMatch(/stand-in.*restore\.log/);
    expect(c.machineState(id)).toBe('checkpointed');
    expect(cgroupDirsOf(id)).toEqual([]);
    expect(existsSync(join(img, 'inventory.img'))).toBe(true);
    const missing = await failure(c.restore(id, { imagePath: join(scratch, 'nothing') }));
    expect(missing).toBeInstanceOf(LifecycleError);
    expect((missing as LifecycleError).code).toBe('ConfigInvalid');
    expect((await facts(c, id, 'error')).map((e) => e.step)).toEqual(['checkpoint', 'restore', 'restore']);
    rmSync(join(img, 'damaged'));
    await c.restore(id);
    expect(c.machineState(id)).toBe('running');
    await c.destroy(id, { force: true });
  });

  it('restore under a new id: needs -b; born running from the bundle; onto a live id refused', async () => {
    const c = await h.containers();
    const id = await running();
    const bundle = c.state.require(id).bundle;
    const img = join(scratch, 'img5');
    await c.checkpoint(id, { imagePath: img });
    const id2 = h.nextId();
    expect(((await failure(c.restore(id2, { imagePath: img }))) as LifecycleError).code).toBe('ContainerNotExists');
    const rs = await c.restore(id2, { imagePath: img, bundle });
    expect(c.machineState(id2)).toBe('running');
    expect(ociStateOf(h.state, id2)).toMatchObject({ status: 'running', pid: rs.pid, bundle });
    expect(await facts(c, id2, 'restore')).toEqual([expect.objectContaining({ fresh: true, pid: rs.pid })]);
    expect(((await failure(c.restore(id2, { imagePath: img, bundle }))) as LifecycleError).code).toBe('ContainerNotStopped');
    // From a missing image directory nothing of a new id stays.
    const id3 = h.nextId();
    expect(((await failure(c.restore(id3, { imagePath: join(scratch, 'nothing'), bundle }))) as LifecycleError).code).toBe('ConfigInvalid');
    expect(existsSync(join(h.root, id3))).toBe(false);
    expect(cgroupDirsOf(id3)).toEqual([]);
    await c.destroy(id2, { force: true });
    await c.destroy(id);
  });
});
