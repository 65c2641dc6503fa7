/**
 * Compiled spawn plans by content. Starting replicas of one bundle builds the same plan each time; laying it
 * out in native memory (compilePlan: ~1,200 ucontexts for runc's default config) costs far more than
 * checking that it is the same. The key is the plan's whole content — every step, argument, struct payload,
 * label and check, the kept fd names — plus the calling thread's errno address (compiled into the arena), so
 * a cached plan is exactly what compilePlan() would make. A compiled plan spawns any number of children (fd
 * numbers are patched per spawn), so sharing one is safe. Bounded (LRU); evicted plans are freed. A process's
 * first plan is compiled without keying it: a CLI process starts one container and exits.
 */
import { type CompiledPlan, compilePlan } from './chain.js';
import { Blob, type ChainArg, type SpawnPlan } from './spawn-plan.js';
import { C } from '../sys/libc.js';

const MAX_ENTRIES = 8;
const cache = new Map<string, CompiledPlan>();
/** Plans compiled in this process: the first is not keyed (a CLI process compiles once and exits). */
let compiles = 0;

function argKey(a: ChainArg): unknown {
  if (a === null || typeof a === 'number' || typeof a === 'string') return a;
  if (typeof a === 'bigint') return `${a}n`;
  if (a instanceof Uint8Array) return { b: Buffer.from(a).toString('base64') };
  if ('struct' in a) {
    // The struct's own layout, as compile would place it in a fresh blob.
    const blob = new Blob();
    const at = a.struct(blob);
    return { s: at, p: blob.parts.map(([o, b]) => [o, b.toString('base64')]), r: blob.relocs, f: blob.fdSlots };
  }
  if ('lazy' in a) throw new Error('lazy'); // only compilePlan() makes these; a plan with one is not cached
  return a; // strv, procfd, FdRefs: plain data
}

/** The content key of a plan, or undefined when it cannot be keyed (then it is compiled every time). */
export function planKey(plan: SpawnPlan): string | undefined {
  try {
    const steps = plan.steps.map((s) => (s.t === 'call' ? { ...s, args: s.args.map(argKey) } : s));
    return JSON.stringify([String(C.errnoLocation() as bigint), plan.keepNames, steps]);
  } catch {
    return undefined;
  }
}

/**
 * The compiled form of `plan`, from the cache when an identical plan was compiled before. Call `release`
 * instead of `compiled.free()` when the spawn is done (it frees only an uncached plan).
 */
export function compileCached(plan: SpawnPlan): { compiled: CompiledPlan; release: () => void; cached: boolean } {
  const key = compiles++ === 0 ? undefined : planKey(plan);
  if (key === undefined) {
    const compiled = compilePlan(plan);
    return { compiled, release: () => compiled.free(), cached: false };
  }
  const hit = cache.get(key);
  if (hit && hit.arena !== 0n) {
    cache.delete(key); // most recently used last
    cache.set(key, hit);
    return { compiled: hit, release: () => {}, cached: true };
  }
  const compiled = compilePlan(plan);
  cache.set(key, compiled);
  while (cache.size > MAX_ENTRIES) {
    const [oldest, p] = cache.entries().next().value as [string, CompiledPlan];
    cache.delete(oldest);
    p.free();
  }
  return { compiled, release: () => {}, cached: false };
}

/** Free every cached plan (tests, or a process that wants its native memory back); the next compile is keyed. */
export function clearPlanCache(): void {
  for (const p of cache.values()) p.free();
  cache.clear();
  compiles = 1;
}
