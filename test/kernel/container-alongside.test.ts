/**
 * spawnContainer's `alongside` work (the cgroup join of a warm start): it runs while the child sets up, the
 * child is not held at its setup gate for it, but the container is not created, its hooks do not run and it
 * does not exec before it is done; a failure fails the start like a failed setup gate and kills the child.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../config/index.js';
import type { ContainerSetup } from '../../kernel/types.js';
import { spawnContainer } from '../../kernel/container.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('spawnContainer alongside', () => {
  let bundle: Bundle;
  let setup: ContainerSetup;
  let nul: number;
  beforeAll(async () => {
    bundle = makeBundle({ spec: (s) => void (s.process.args = ['/bin/true']) });
    setup = (await loadBundle(bundle.dir)).setup;
    nul = fs.openSync('/dev/null', 'r+');
  });
  afterAll(() => {
    fs.closeSync(nul);
    bundle?.cleanup();
  });

  it('the child sets up while it runs; created, start and exec wait for it', async () => {
    let done = 0;
    let arrivedBeforeDone = false;
    const init = spawnContainer(setup, {
      startGate: 'pipe',
      stdio: [nul, nul, nul],
      alongside: async () => {
        // The child reaches its start gate while this still runs: it was not held at the setup gate.
        await init.handle.arrived('start');
        arrivedBeforeDone = done === 0;
        await sleep(200);
        done = performance.now();
      },
    });
    await init.created;
    expect(arrivedBeforeDone).toBe(true);
    expect(done).toBeGreaterThan(0);
    expect(init.handle.timings.gates.start).toBeLessThan(done);
    await init.start();
    expect(init.handle.timings.exec).toBeGreaterThan(done);
    expect(await init.exited).toEqual({ code: 0, signal: null });
  });

  it('the prestart hooks run after it', async () => {
    const order: string[] = [];
    const init = spawnContainer(setup, {
      startGate: 'pipe',
      stdio: [nul, nul, nul],
      alongside: async () => {
        await sleep(150);
        order.push('alongside');
      },
      onPrestart: () => void order.push('prestart'),
    });
    await init.start();
    expect(order).toEqual(['alongside', 'prestart']);
    expect(await init.exited).toEqual({ code: 0, signal: null });
  });

  it('a failure fails the start as a failed setup gate and kills the child', async () => {
    const init = spawnContainer(setup, {
      startGate: 'pipe',
      stdio: [nul, nul, nul],
      alongside: async () => {
        await sleep(50);
        throw new Error('cgroup placement failed');
      },
    });
    await expect(init.created).rejects.toThrow('gate(setup) failed: cgroup placement failed');
    await expect(init.handle.started).rejects.toMatchObject({ name: 'SpawnError', label: 'gate(setup)' });
    expect(await init.exited).toMatchObject({ signal: 9 });
  });
});
