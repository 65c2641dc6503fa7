/**
 * The journal snapshot's effect, before/after, on journals of 20,000 and 100,000 events (bench/events.ts's
 * generator: containers × create/start/pause/resume/exit): (1) learning every container's state — journal
 * open + EventRecorder.all() — in a fresh process; (2) Supervisor.start in a fresh process; (3) CLI verbs
 * next to a running container in that root: `cordon pause` + `cordon resume` (they record events, so they open
 * the journal and load the recorder), and `cordon state` / `cordon list` (which do not open the journal).
 * "before" is another build's dist/ (--before DIR, e.g. one built from the commit before the snapshot); "after
 * (no snapshot)" is this build on a journal without a snapshot (the first open after an upgrade, which then
 * writes one); "after" is this build with the snapshot in place. Contenders interleave, order alternating.
 *
 * Usage: node dist/bench/journal-snapshot.js [--before DIR] [--sizes 20000,100000] [--rounds N]
 *                                           [--rootfs DIR] [--write FILE]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeReplayJournal } from './events.js';
import { type Contender, benchEnv, interleave, runChecked, runDetached, summarize, timeCommand } from './interleave.js';
import { REPO as here, arg, fmt } from './bench-options.js';


/** A build to measure: its dist/ directory and its CLI. */
interface Build {
  name: string;
  dist: string;
  cli: string;
}

/** Run `code` (an ES module body with DIST and ROOT in scope) in a fresh Node process; returns what it prints as JSON. */
function child<T>(b: Build, root: string, code: string): T {
  const body = `const DIST = ${JSON.stringify(b.dist)}; const ROOT = ${JSON.stringify(root)};\n${code}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', body], { env: benchEnv, encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as T;
}

/**
 * Journal open + EventRecorder.all() (every container's state, as the supervisor needs) or + stateOf() of one
 * container (what a CLI verb needs), in a fresh process (modules loaded before the clock starts).
 */
function recorderLoad(b: Build, root: string, one = false): { ms: number; parsed: number | null; containers: number } {
  return child(b, root, `
    const { JournalStore } = await import(DIST + '/events/journal.js');
    const er = await import(DIST + '/actors/event-recorder.js');
    const file = ROOT + '/events.journal';
    const t0 = performance.now();
    const store = er.openRecorderJournal ? er.openRecorderJournal(file) : JournalStore.open(file);
    const rec = new er.EventRecorder(store, 'node-a');
    const n = ${one} ? ((await rec.stateOf('web-00001')).value === 'stopped' ? 1 : 0) : (await rec.all()).size;
    const ms = performance.now() - t0;
    console.log(JSON.stringify({ ms, parsed: store.openStats?.parsedRecords ?? null, containers: n }));
  `);
}

/** Supervisor.start in a fresh process (modules loaded first), then stop. */
function supervisorStart(b: Build, root: string): { ms: number; parsed: number | null; containers: number } {
  return child(b, root, `
    const { Supervisor } = await import(DIST + '/actors/supervisor.js');
    const t0 = performance.now();
    const sup = await Supervisor.start({ root: ROOT, host: 'node-a' });
    const ms = performance.now() - t0;
    const parsed = sup.store.openStats?.parsedRecords ?? null;
    const containers = sup.ids().length;
    await sup.stop();
    console.log(JSON.stringify({ ms, parsed, containers }));
  `);
}

/** A bundle running `sleep 100000` on the busybox rootfs. */
function sleepBundle(dir: string, cli: string, rootfs: string): string {
  const b = path.join(dir, 'bundle-sleep');
  fs.mkdirSync(b);
  runChecked([process.execPath, cli, 'spec', '-b', b]);
  const file = path.join(b, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as { process: { terminal: boolean; args: string[] }; root: { path: string } };
  spec.process.terminal = false;
  spec.process.args = ['sleep', '100000'];
  spec.root.path = path.resolve(rootfs);
  fs.writeFileSync(file, JSON.stringify(spec, null, '\t'));
  return b;
}

const median = (xs: number[]) => summarize(xs).median;

async function main(): Promise<void> {
  const sizes = (arg('sizes') ?? '20000,100000').split(',').map(Number);
  const rounds = Number(arg('rounds') ?? 5);
  const rootfs = arg('rootfs') ?? process.env.CORDON_ROOTFS ?? path.join(here, '.cache', 'rootfs', 'busybox');
  const after: Build = { name: 'after', dist: path.join(here, 'dist'), cli: path.join(here, 'bin', 'cordon.js') };
  const beforeDist = arg('before');
  const before: Build | undefined = beforeDist ? { name: 'before', dist: path.resolve(beforeDist), cli: path.join(path.resolve(beforeDist), '..', 'bin', 'cordon.js') } : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-jsnap-bench-'));
  const L: string[] = [];
  const log = (s: string) => {
    console.log(s);
    L.push(s);
  };
  try {
    const bundle = sleepBundle(dir, after.cli, rootfs);
    for (const size of sizes) {
      const root = path.join(dir, `root-${size}`);
      fs.mkdirSync(root);
      const journal = path.join(root, 'events.journal');
      const snap = `${journal}.snapshot`;
      const w = writeReplayJournal(journal, size / 5);
      log(`\n#### ${fmt(w.events)} events (${fmt(w.bytes / 2 ** 20, 1)} MiB, ${fmt(size / 5)} containers)\n`);
      const dropSnapshot = () => fs.rmSync(snap, { force: true });

      // (1) and (2): each contender in a fresh process, interleaved.
      const rows: Array<[string, Map<string, number[]>, Map<string, number | null>]> = [];
      const steps: Array<[string, (b: Build, root: string) => { ms: number; parsed: number | null }]> = [
        ['journal open + EventRecorder.stateOf(one container) (a CLI verb)', (b, r) => recorderLoad(b, r, true)],
        ['journal open + EventRecorder.all() (every state)', (b, r) => recorderLoad(b, r)],
        ['Supervisor.start', supervisorStart],
      ];
      for (const [what, fn] of steps) {
        const parsed = new Map<string, number | null>();
        const contenders: Contender[] = [
          ...(before ? [{ name: 'before', run: () => fn(before, root).ms }] : []),
          { name: 'after, no snapshot', run: () => (dropSnapshot(), ((r) => (parsed.set('after, no snapshot', r.parsed), r.ms))(fn(after, root))) },
          { name: 'after', run: () => ((r) => (parsed.set('after', r.parsed), r.ms))(fn(after, root)) },
        ];
        // "after" uses the snapshot the previous "after, no snapshot" run left (every open that reads ≥ 1,000 records writes one).
        const samples = await interleave(contenders, { rounds, warmup: 1 });
        rows.push([what, samples, parsed]);
      }
      log('| median of ' + rounds + ' fresh processes | ' + [...(before ? ['before'] : []), 'after, no snapshot', 'after'].join(' | ') + ' | records parsed after (no snapshot / snapshot) |');
      log('|---|' + (before ? '---:|' : '') + '---:|---:|---|');
      for (const [what, samples, parsed] of rows) {
        const cells = [...(before ? [samples.get('before') ?? []] : []), samples.get('after, no snapshot') ?? [], samples.get('after') ?? []].map((xs) => `${fmt(median(xs), 1)} ms`);
        log(`| ${what} | ${cells.join(' | ')} | ${fmt(parsed.get('after, no snapshot') ?? NaN)} / ${fmt(parsed.get('after') ?? NaN)} |`);
      }

      // (3) CLI verbs next to a running container in this root.
      const id = `jsnap-${size}`;
      runDetached([process.execPath, after.cli, '--root', root, 'run', '-d', '-b', bundle, id]);
      try {
        const cli = (b: Build, ...a: string[]) => [process.execPath, b.cli, '--root', root, ...a];
        const pauseResume = (b: Build) => () => timeCommand(cli(b, 'pause', id)) + timeCommand(cli(b, 'resume', id));
        dropSnapshot();
        const firstAfter = pauseResume(after)(); // writes the snapshot
        const cliRows: Array<[string, Contender[]]> = [
          ['`cordon pause` + `cordon resume`', [...(before ? [{ name: 'before', run: pauseResume(before) }] : []), { name: 'after', run: pauseResume(after) }]],
          ['`cordon state`', [...(before ? [{ name: 'before', run: () => timeCommand(cli(before, 'state', id)) }] : []), { name: 'after', run: () => timeCommand(cli(after, 'state', id)) }]],
          ['`cordon list`', [...(before ? [{ name: 'before', run: () => timeCommand(cli(before, 'list')) }] : []), { name: 'after', run: () => timeCommand(cli(after, 'list')) }]],
        ];
        log('');
        log(`| CLI, median of ${rounds} | ${before ? 'before | ' : ''}after |`);
        log(`|---|${before ? '---:|' : ''}---:|`);
        for (const [what, contenders] of cliRows) {
          const s = await interleave(contenders, { rounds, warmup: 1 });
          log(`| ${what} | ${[...(before ? [s.get('before') ?? []] : []), s.get('after') ?? []].map((xs) => `${fmt(median(xs), 1)} ms`).join(' | ')} |`);
        }
        log(`\nFirst \`cordon pause\` + \`cordon resume\` of this build on the journal without a snapshot (the pause reads it all and writes one): ${fmt(firstAfter, 1)} ms.`);
      } finally {
        runDetached([process.execPath, after.cli, '--root', root, 'delete', '--force', id]);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const out = arg('write');
  if (out) fs.writeFileSync(out, `${L.join('\n')}\n`);
}

await main();
