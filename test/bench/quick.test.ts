/**
 * The benchmark harness's smoke run (`node dist/bench/main.js --quick`), so the harness never rots: it must
 * finish, measure every case with sane numbers, check every target, and leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HarnessResult } from '../../bench/report.js';
import { REPO_ROOT } from '../fixtures/bundle.js';

const positive = (x: number) => Number.isFinite(x) && x > 0;

describe('bench harness --quick', () => {
  it('measures every case against runc and crun, checks every target and cleans up', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-bench-quick-'));
    try {
      const out = path.join(dir, 'RESULTS.md');
      const json = path.join(dir, 'result.json');
      const env = { ...process.env };
      delete env.NODE_EXTRA_CA_CERTS;
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/bench/main.js'), '--quick', '--out', out, '--json', json], { env, encoding: 'utf8', timeout: 150_000 });
      const secs = (Date.now() - t0) / 1000;
      expect(r.status, r.stderr).toBe(0);
      expect(secs).toBeLessThan(120);
      const res = JSON.parse(fs.readFileSync(json, 'utf8')) as HarnessResult;
      expect(res.leftovers).toEqual([]);

      const names = (rows: Array<{ name: string }> | undefined) => (rows ?? []).map((x) => x.name);
      expect(names(res.startLatency)).toEqual(expect.arrayContaining(['cordon library (warm): create → exit reaped', '`cordon run` (CLI)', '`runc run`', '`crun run`']));
      for (const row of res.startLatency ?? []) expect(positive(row.s.median), row.name).toBe(true);
      for (const row of [...(res.startLatency ?? []), ...(res.cycle ?? [])].filter((x) => x.s.n > 0)) expect(row.s.min, row.name).toBeLessThanOrEqual(row.s.median);
      expect(names(res.cycle)).toHaveLength(3);
      expect(names(res.throughput)).toEqual(expect.arrayContaining(['cordon library (warm)', '`runc run`', '`crun run`', '`cordon run` (CLI)']));
      for (const x of res.throughput ?? []) expect(positive(x.t.perSecond) && x.t.count === res.meta.sizes.throughputCount, x.name).toBe(true);
      expect((res.ops ?? []).map((o) => o.op)).toEqual(['state', 'pause + resume', 'exec /bin/true', 'stats sample']);
      for (const o of res.ops ?? []) {
        expect(names(o.rows)).toEqual(expect.arrayContaining(['cordon library (warm)']));
        expect(o.rows.some((x) => x.name.startsWith('`runc'))).toBe(true);
        for (const row of o.rows) expect(positive(row.s.median), `${o.op}: ${row.name}`).toBe(true);
      }
      expect(res.breakdown?.phases).toHaveLength(7);
      for (const [k, s] of res.breakdown?.phases ?? []) expect(s.median >= 0 && Number.isFinite(s.median), k).toBe(true);
      expect(positive(res.memory?.idle.rssKB ?? NaN)).toBe(true);
      expect(res.memory?.perContainer.containers).toBe(res.meta.sizes.idleContainers);
      expect(res.memory?.perContainer.leftovers).toEqual([]);
      expect(positive(res.events?.append.single.perSec ?? NaN)).toBe(true);
      expect(res.events?.replay.events).toBe(res.meta.sizes.replayContainers * 5);
      expect(res.targets).toHaveLength(8);

      const md = fs.readFileSync(out, 'utf8');
      for (const h of ['### Targets', '### Start latency', '### create + start + delete', '### Throughput', '### Operations on a running container', '### Start breakdown', '### Supervisor memory', '### Events', '### Event latency over NATS']) expect(md).toContain(h);
      expect(md).toContain(process.version);
      // Nothing of the run is left: no work directory (its state roots), no container in the default state roots.
      expect(fs.existsSync(res.meta.workDir)).toBe(false);
      for (const root of ['/run/runc', '/run/crun', '/run/cordon']) {
        expect(fs.existsSync(root) ? fs.readdirSync(root).filter((e) => e.startsWith('cb')) : []).toEqual([]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
