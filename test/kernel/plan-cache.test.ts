/**
 * Compiled spawn plans reused by content (kernel/spawn/plan-cache.ts): an identical plan comes from the cache, any
 * difference (an argument, a struct's bytes, a label) compiles anew, and children spawned one after another
 * from one cached plan each get their own fds patched in.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpawnPlan } from '../../kernel/spawn/spawn-plan.js';
import { CLONE } from '../../kernel/sys/flags.js';
import { clearPlanCache, compileCached, planKey } from '../../kernel/spawn/plan-cache.js';
import { spawn } from '../../kernel/spawn/spawn.js';

function plan(hostname: string, opts: { label?: string; struct?: number } = {}): SpawnPlan {
  const p = new SpawnPlan();
  p.gate('setup');
  p.call('sethostname', [Buffer.from(hostname), hostname.length], { label: opts.label ?? `sethostname(${hostname})` });
  if (opts.struct !== undefined) {
    const v = opts.struct;
    p.call('memset', [{ struct: (blob) => blob.add(Buffer.from([v, v, v, v])) }, 0, 0], { check: 'none' });
  }
  p.exec('/bin/sh', ['sh', '-c', 'hostname'], ['PATH=/bin:/usr/bin']);
  return p;
}

describe('compiled plan cache', () => {
  it('returns the same compiled plan for an identical plan and a new one for any difference', () => {
    clearPlanCache();
    try {
      const a = compileCached(plan('alpha', { struct: 1 }));
      const b = compileCached(plan('alpha', { struct: 1 }));
      expect(a.cached).toBe(false);
      expect(b.cached).toBe(true);
      expect(b.compiled).toBe(a.compiled);
      for (const other of [plan('alphb', { struct: 1 }), plan('alpha', { struct: 2 }), plan('alpha', { struct: 1, label: 'x' })]) {
        const c = compileCached(other);
        expect(c.cached).toBe(false);
        expect(c.compiled).not.toBe(a.compiled);
      }
      // release() of a cached plan keeps it usable; it stays in the cache.
      b.release();
      expect(a.compiled.arena).not.toBe(0n);
      expect(planKey(plan('alpha'))).toBe(planKey(plan('alpha')));
    } finally {
      clearPlanCache();
    }
  });

  it('spawns children one after another from one cached plan, each with its own stdout', async () => {
    clearPlanCache();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-plan-cache-'));
    try {
      for (let i = 0; i < 3; i++) {
        const { compiled, cached, release } = compileCached(plan('cached'));
        expect(cached).toBe(i > 0);
        const file = path.join(dir, `out${i}`);
        const fd = fs.openSync(file, 'w');
        const h = spawn(compiled, { namespaces: CLONE.NEWUTS, stdio: [0, fd, fd] });
        release();
        fs.closeSync(fd);
        await h.started;
        expect(await h.exited).toEqual({ code: 0, signal: null });
        expect(fs.readFileSync(file, 'utf8')).toBe('cached\n');
      }
    } finally {
      clearPlanCache();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
