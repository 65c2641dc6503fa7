/**
 * The init joins its cgroups itself (kernel/spawn/clone3.ts, ContainerSpawnOptions.cgroupJoin): created in its
 * cgroup v2 directory by clone3(CLONE_INTO_CGROUP), and writing "0" to each v1 `tasks` file first thing, so
 * no cgroup.procs write (and its RCU grace period) is on the start path. A failed write names the step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../config/index.js';
import { createCgroupManager } from '../../kernel/cgroups/manager.js';
import { compilePlan } from '../../kernel/spawn/chain.js';
import { SpawnPlan } from '../../kernel/spawn/spawn-plan.js';
import { spawnContainer } from '../../kernel/container/container.js';
import { readMountInfo } from '../../kernel/rootfs/mountinfo.js';
import { SpawnError } from '../../kernel/spawn/spawn-handle.js';
import { spawn } from '../../kernel/spawn/spawn.js';
import type { ContainerSetup } from '../../config/model.js';
import { type Bundle, makeBundle } from '../fixtures/bundle.js';

const mounts = readMountInfo();
const v2Mount = mounts.find((m) => m.fsType === 'cgroup2')?.mountPoint;
const cpusetMount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('cpuset'))?.mountPoint;

describe('cgroups joined by the child', () => {
  let bundle: Bundle;
  let setup: ContainerSetup;
  let outFile: string;
  let out: number;
  beforeAll(async () => {
    bundle = makeBundle({ spec: (s) => void (s.process.args = ['/bin/cat', '/proc/self/cgroup']) });
    setup = (await loadBundle(bundle.dir)).setup;
    outFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-cgjoin-')), 'out');
    out = fs.openSync(outFile, 'w+');
  });
  afterAll(() => {
    fs.closeSync(out);
    fs.rmSync(path.dirname(outFile), { recursive: true, force: true });
    bundle?.cleanup();
  });

  it.skipIf(!v2Mount)('spawn with intoCgroupFd: the child starts in that cgroup v2 directory (clone3) (skipped only on a host without a cgroup v2 hierarchy)', async () => {
    const dir = path.join(v2Mount as string, `cordon-test-clone3-${process.pid}`);
    fs.mkdirSync(dir);
    const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const file = `${outFile}.clone3`;
    const fd = fs.openSync(file, 'w+');
    try {
      const p = new SpawnPlan();
      p.gate('setup');
      p.exec('/bin/cat', ['cat', '/proc/self/cgroup'], []);
      const c = compilePlan(p);
      const h = spawn(c, { stdio: [0, fd, 2], intoCgroupFd: dfd });
      c.free();
      expect(h.intoCgroup).toBe(true);
      await h.started;
      expect(await h.exited).toEqual({ code: 0, signal: null });
      expect(fs.readFileSync(file, 'utf8').split('\n')).toContain(`0::/${path.basename(dir)}`);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(dfd);
      fs.rmSync(file, { force: true });
      fs.rmdirSync(dir);
    }
  });

  it('a container is in every one of its cgroups when it runs', async () => {
    const id = `cordon-test-cgjoin-${process.pid}`;
    const cg = createCgroupManager({ id });
    cg.create();
    try {
      fs.ftruncateSync(out, 0);
      const targets = cg.joinTargets();
      expect(targets.tasks.length + (targets.unified ? 1 : 0)).toBeGreaterThan(0);
      const init = spawnContainer(setup, { startGate: 'pipe', stdio: [0, out, 2], cgroupJoin: targets });
      await init.start();
      expect(await init.exited).toEqual({ code: 0, signal: null });
      const lines = fs.readFileSync(outFile, 'utf8').trim().split('\n');
      const joined = lines.filter((l) => l.endsWith(`/${id}`));
      // One line per hierarchy it was given (a v1 directory shared by several controllers is one line).
      expect(joined.length).toBe(targets.tasks.length + (targets.unified ? 1 : 0));
      if (targets.unified) expect(joined.some((l) => l.startsWith('0::'))).toBe(true);
    } finally {
      await cg.destroy();
    }
  });

  it.skipIf(!cpusetMount)('a failed tasks write fails the start with the step, the field and errno (skipped only on a host without a v1 cpuset hierarchy)', async () => {
    // A new v1 cpuset cgroup has no cpus yet: joining it fails with ENOSPC.
    const dir = path.join(cpusetMount as string, `cordon-test-cgjoin-fail-${process.pid}`);
    fs.mkdirSync(dir);
    try {
      const init = spawnContainer(setup, { startGate: 'pipe', stdio: [0, out, 2], cgroupJoin: { tasks: [{ name: 'cpuset', path: path.join(dir, 'tasks') }] } });
      const err = await init.created.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(SpawnError);
      expect(err).toMatchObject({ label: 'write("0") to the tasks file of the container\'s cpuset cgroup', field: 'linux.cgroupsPath', code: 'ENOSPC' });
      expect(await init.exited).toMatchObject({ signal: 9 });
    } finally {
      fs.rmdirSync(dir);
    }
  });
});
