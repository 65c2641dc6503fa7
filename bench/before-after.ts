/**
 * This build against another one (`--before DIR`, a checkout with its own dist/), interleaved in one run with
 * runc as the reference on the same bundle: fresh-process CLI verbs (run, create + start + delete, state,
 * pause + resume, exec, kill), the library's warm start, and library throughput. Medians, and ratios to runc
 * so that two runs on a loaded machine can be compared too.
 *
 *   node dist/bench/before-after.js --before /path/to/other/checkout [--rounds 21] [--count 100] [--out FILE]
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO, arg, emitTable } from './bench-options.js';
import { type Contender, fmtMs, interleave, runDetached, summarize, throughput, timeCommand } from './interleave.js';
import { BenchWorld, machine } from './runtimes.js';

const before = arg('before');
if (!before) throw new Error('before-after: give --before DIR (a checkout of the other build, with dist/ built)');
const rounds = Number(arg('rounds') ?? 21);
const warmup = 2;
const count = Number(arg('count') ?? 100);
const builds = { after: REPO, before: path.resolve(before) } as const;
type Build = keyof typeof builds;

const world = new BenchWorld(path.join(REPO, process.env.CORDON_ROOTFS ?? '.cache/rootfs/busybox'));
const roots = Object.fromEntries((Object.keys(builds) as Build[]).map((b) => [b, path.join(world.dir, `root-${b}`)])) as Record<Build, string>;
const cli = (b: Build, ...args: string[]) => [process.execPath, path.join(builds[b], 'bin', 'cordon.js'), '--root', roots[b], ...args];
const rows: Array<[string, string, string, string, string]> = [];

/** Interleave before / after (and runc) on one case; one row each, the ratio to runc and to before. */
async function compare(what: string, run: Record<Build | 'runc', ((round: number) => number | void | Promise<number | void>) | undefined>): Promise<void> {
  const contenders: Contender[] = (Object.entries(run) as Array<[string, Contender['run'] | undefined]>).filter(([, f]) => f).map(([name, f]) => ({ name, run: f as Contender['run'] }));
  const got = await interleave(contenders, { rounds, warmup });
  const med = (n: string) => summarize(got.get(n) ?? []).median;
  for (const c of contenders) {
    const m = med(c.name);
    rows.push([what, c.name, fmtMs(m), Number.isFinite(med('runc')) ? `${(m / med('runc')).toFixed(2)}×` : '—', `${(m / med('before')).toFixed(2)}×`]);
  }
}

/** A container id for this run. */
const id = (tag: string) => world.id(tag);

async function library(b: Build) {
  const file = b === 'after' ? path.join(builds.after, 'dist', 'index.js') : path.join(builds.before, 'dist', 'actors', 'cordon.js');
  const m = (await import(pathToFileURL(file).href)) as { Cordon: { open(o: { root: string }): Promise<LibCordon> } };
  return m.Cordon.open({ root: path.join(world.dir, `lib-${b}`) });
}
interface LibContainer {
  run(): Promise<unknown>;
  destroy(o?: { force?: boolean }): Promise<void>;
}
interface LibCordon {
  create(id: string, o: { bundle: string; stdio: number[] }): Promise<LibContainer>;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const runcRef = world.hasRunc ? world.runc.bind(world) : undefined;
  try {
    await compare('`cordon run` /bin/true (fresh process)', {
      before: () => timeCommand(cli('before', 'run', '-b', world.trueBundle, id('rb'))),
      after: () => timeCommand(cli('after', 'run', '-b', world.trueBundle, id('ra'))),
      runc: runcRef && (() => timeCommand(world.runc('run', '-b', world.trueBundle, id('rr')))),
    });
    const cycle = (b: Build) => () => {
      const x = id(`c${b[0]}`);
      return timeCommand(cli(b, 'create', '-b', world.trueBundle, x)) + timeCommand(cli(b, 'start', x)) + timeCommand(cli(b, 'delete', '--force', x));
    };
    await compare('create + start + delete (3 processes)', {
      before: cycle('before'),
      after: cycle('after'),
      runc: runcRef && (() => {
        const x = id('cr');
        return timeCommand(world.runc('create', '-b', world.trueBundle, x)) + timeCommand(world.runc('start', x)) + timeCommand(world.runc('delete', '--force', x));
      }),
    });
    // Verbs on one running container per build.
    const live: Record<Build | 'runc', string> = { before: id('lb'), after: id('la'), runc: id('lr') };
    for (const b of Object.keys(builds) as Build[]) runDetached(cli(b, 'run', '-d', '-b', world.sleepBundle, live[b]));
    if (world.hasRunc) runDetached(world.runc('run', '-d', '-b', world.sleepBundle, live.runc));
    const verb = (what: string, args: (x: string) => string[][]) =>
      compare(what, {
        before: () => args(live.before).reduce((t, a) => t + timeCommand(cli('before', ...a)), 0),
        after: () => args(live.after).reduce((t, a) => t + timeCommand(cli('after', ...a)), 0),
        runc: runcRef && (() => args(live.runc).reduce((t, a) => t + timeCommand(world.runc(...a)), 0)),
      });
    await verb('state', (x) => [['state', x]]);
    await verb('pause + resume (2 processes)', (x) => [['pause', x], ['resume', x]]);
    await verb('exec /bin/true', (x) => [['exec', x, '/bin/true']]);
    await verb('kill (SIGCONT)', (x) => [['kill', x, 'CONT']]);
    for (const b of Object.keys(builds) as Build[]) runDetached(cli(b, 'delete', '--force', live[b]));
    if (world.hasRunc) runDetached(world.runc('delete', '--force', live.runc));

    // The library, warm, both builds in this process.
    const nul = fs.openSync('/dev/null', 'r+');
    const libs = { before: await library('before'), after: await library('after') };
    const warm = (b: Build) => async () => {
      const c = await libs[b].create(id(`w${b[0]}`), { bundle: world.trueBundle, stdio: [nul, nul, nul] });
      const t0 = performance.now();
      await c.run();
      const ms = performance.now() - t0;
      await c.destroy();
      return ms;
    };
    const start = (b: Build) => async () => {
      const t0 = performance.now();
      const c = await libs[b].create(id(`s${b[0]}`), { bundle: world.trueBundle, stdio: [nul, nul, nul] });
      await c.run();
      const ms = performance.now() - t0;
      await c.destroy();
      return ms;
    };
    await compare('library warm start: create → exit reaped', { before: start('before'), after: start('after'), runc: undefined });
    await compare('library: start → exit recorded (run)', { before: warm('before'), after: warm('after'), runc: undefined });
    for (const b of ['before', 'after', 'before', 'after'] as Build[]) {
      const t = await throughput(count, 8, async (i) => {
        const c = await libs[b].create(id(`t${b[0]}${i}`), { bundle: world.trueBundle, stdio: [nul, nul, nul] });
        await c.run();
        await c.destroy();
      });
      rows.push([`library throughput, ${count} at concurrency 8 (containers/s)`, b, t.perSecond.toFixed(1), '', '']);
    }
    for (const l of Object.values(libs)) await l.close();
    fs.closeSync(nul);
  } finally {
    const problems = world.cleanup();
    if (problems.length) process.stderr.write(`before-after: cleanup: ${problems.join('; ')}\n`);
  }
  emitTable(
    'node dist/bench/before-after.js',
    `${machine()}; rounds ${rounds} (+${warmup} warm-up), interleaved; after = ${REPO}, before = ${builds.before}.`,
    ['case', 'build', 'median ms (or /s)', '/ runc', '/ before'],
    ['---', '---', '---:', '---:', '---:'],
    rows,
  );
}

await main();
