/**
 * Operations on a running container (busybox `sleep 100000`, runc's default config), interleaved: state,
 * pause + resume, exec of /bin/true, one stats sample — through the cordon CLI (a fresh process each),
 * through the library (a warm process), and runc's (and crun's, where it has the verb) equivalents.
 */
import fs from 'node:fs';
import type { Container, Cordon } from '../actors/cordon.js';
import { type Contender, interleave, runChecked, runDetached, summarize, timeCommand } from './interleave.js';
import type { BenchWorld } from './runtimes.js';
import type { Row } from './start-cases.js';

/** Rows of one operation: the runtimes' samples, the first runc row being the comparison base. */
export interface OpRows {
  op: string;
  rows: Row[];
}

/** Start one sleeping container per runtime, time every operation, delete them. */
export async function runningOps(w: BenchWorld, cordon: Cordon, z: { rounds: number; warmup: number }): Promise<OpRows[]> {
  const ids = { cordon: w.id('ops'), lib: w.id('opslib'), runc: w.id('rops'), crun: w.id('cops') };
  const nul = fs.openSync('/dev/null', 'r+');
  let lib: Container | undefined;
  const stops: Array<() => void> = [];
  try {
    runDetached(w.cordon('run', '-d', '-b', w.sleepBundle, ids.cordon));
    stops.push(() => runDetached(w.cordon('delete', '--force', ids.cordon)));
    lib = await cordon.create(ids.lib, { bundle: w.sleepBundle, stdio: [nul, nul, nul] });
    await lib.start();
    if (w.hasRunc) {
      runDetached(w.runc('run', '-d', '-b', w.sleepBundle, ids.runc));
      stops.push(() => runDetached(w.runc('delete', '--force', ids.runc)));
    }
    if (w.hasCrun) {
      runDetached(w.crun('run', '-d', '-b', w.sleepBundle, ids.crun));
      stops.push(() => runDetached(w.crun('delete', '--force', ids.crun)));
    }
    const c = lib;
    const status = (argv: string[]) => (JSON.parse(runChecked(argv).stdout) as { status: string }).status;
    // Everything behaves before anything is timed.
    for (const [who, argv] of [['cordon', (...a: string[]) => w.cordon(...a)], ...(w.hasRunc ? [['runc', (...a: string[]) => w.runc(...a)]] : [])] as Array<[keyof typeof ids, (...a: string[]) => string[]]>) {
      if (status(argv('state', ids[who])) !== 'running') throw new Error(`${who}: container not running`);
      runChecked(argv('events', '--stats', ids[who]));
    }

    const pauseResume = (argv: (...a: string[]) => string[], id: string) => () => {
      const t0 = performance.now();
      timeCommand(argv('pause', id));
      timeCommand(argv('resume', id));
      return performance.now() - t0;
    };
    const cordonCli = (...a: string[]) => w.cordon(...a);
    const runc = (...a: string[]) => w.runc(...a);
    const crun = (...a: string[]) => w.crun(...a);
    const ops: Array<{ op: string; contenders: Contender[] }> = [
      {
        op: 'state',
        contenders: [
          { name: 'cordon library (warm)', run: async () => void (await c.state()) },
          { name: '`cordon state` (CLI)', run: () => timeCommand(cordonCli('state', ids.cordon)) },
          ...(w.hasRunc ? [{ name: '`runc state`', run: () => timeCommand(runc('state', ids.runc)) }] : []),
          ...(w.hasCrun ? [{ name: '`crun state`', run: () => timeCommand(crun('state', ids.crun)) }] : []),
        ],
      },
      {
        op: 'pause + resume',
        contenders: [
          {
            name: 'cordon library (warm)',
            run: async () => {
              await c.pause();
              await c.resume();
            },
          },
          { name: '`cordon pause` + `cordon resume` (CLI)', run: pauseResume(cordonCli, ids.cordon) },
          ...(w.hasRunc ? [{ name: '`runc pause` + `runc resume`', run: pauseResume(runc, ids.runc) }] : []),
          ...(w.hasCrun ? [{ name: '`crun pause` + `crun resume`', run: pauseResume(crun, ids.crun) }] : []),
        ],
      },
      {
        op: 'exec /bin/true',
        contenders: [
          {
            name: 'cordon library (warm)',
            run: async () => {
              const h = await c.exec({ args: ['/bin/true'], stdio: [nul, nul, nul] });
              const st = await h.exited;
              if (st.exitCode !== 0) throw new Error(`library exec: ${JSON.stringify(st)}`);
            },
          },
          { name: '`cordon exec` (CLI)', run: () => timeCommand(cordonCli('exec', ids.cordon, '/bin/true')) },
          ...(w.hasRunc ? [{ name: '`runc exec`', run: () => timeCommand(runc('exec', ids.runc, '/bin/true')) }] : []),
          ...(w.hasCrun ? [{ name: '`crun exec`', run: () => timeCommand(crun('exec', ids.crun, '/bin/true')) }] : []),
        ],
      },
      {
        op: 'stats sample',
        contenders: [
          { name: 'cordon library (warm)', run: async () => void (await c.stats()) },
          { name: '`cordon events --stats` (CLI)', run: () => timeCommand(cordonCli('events', '--stats', ids.cordon)) },
          ...(w.hasRunc ? [{ name: '`runc events --stats`', run: () => timeCommand(runc('events', '--stats', ids.runc)) }] : []),
        ],
      },
    ];
    const out: OpRows[] = [];
    for (const o of ops) {
      const t = await interleave(o.contenders, z);
      out.push({ op: o.op, rows: [...t].map(([name, xs]) => ({ name, s: summarize(xs) })) });
    }
    return out;
  } finally {
    for (const stop of stops) {
      try {
        stop();
      } catch {
        // the world's cleanup sweeps what is left
      }
    }
    await lib?.destroy({ force: true }).catch(() => {});
    fs.closeSync(nul);
  }
}
