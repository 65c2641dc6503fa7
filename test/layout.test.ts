/**
 * The layering rules of ../shared/design/ARCHITECTURE.md, checked on the import graph of the sources (every
 * static, re-export and dynamic import, type-only ones included), and the promise that follows from them:
 * validating a config loads no native code. The second part runs dist/ (build first, as for the CLI tests).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, makeBundle } from './fixtures/bundle.js';

/** Top-level folders of the sources (tsconfig's include), and where the tests are. */
const SOURCE_DIRS = ['cli', 'client', 'actors', 'machines', 'events', 'kernel', 'config', 'bench'];
const KERNEL = path.join(REPO_ROOT, 'kernel');
const KERNEL_INDEX = path.join(KERNEL, 'index.ts');
const DIST_KERNEL = path.join(REPO_ROOT, 'dist', 'kernel');
/** Tests of kernel internals, which may import any kernel module. */
const KERNEL_INTERNAL_TESTS = [path.join(REPO_ROOT, 'test', 'kernel'), path.join(REPO_ROOT, 'test', 'cgroups')];

interface Import {
  /** Repository-relative path of the importing file. */
  file: string;
  /** The specifier as written. */
  spec: string;
  /** Absolute path it names (its .ts source for a ./x.js specifier), or undefined for a package. */
  target?: string;
}

function filesUnder(dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (exts.some((x) => e.name.endsWith(x)) && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map(({ fileName: spec }) => {
    const rel = path.relative(REPO_ROOT, file);
    if (!spec.startsWith('.')) return { file: rel, spec };
    let target = path.resolve(path.dirname(file), spec);
    if (target.endsWith('.js') && !target.startsWith(path.join(REPO_ROOT, 'dist') + path.sep) && fs.existsSync(target.replace(/\.js$/, '.ts'))) target = target.replace(/\.js$/, '.ts');
    return { file: rel, spec, target };
  });
}

const under = (p: string, dir: string) => p === dir || p.startsWith(dir + path.sep);
const describeImport = (i: Import) => `${i.file} imports '${i.spec}'`;

const sources = SOURCE_DIRS.flatMap((d) => filesUnder(path.join(REPO_ROOT, d), ['.ts']));
const tests = filesUnder(path.join(REPO_ROOT, 'test'), ['.ts', '.mjs']);
const sourceImports = sources.flatMap(importsOf);
const testImports = tests.flatMap(importsOf);

/** A kernel module other than kernel/index.ts, in the sources or in dist/. */
function isDeepKernel(i: Import): boolean {
  if (i.target === undefined) return false;
  if (under(i.target, KERNEL)) return i.target !== KERNEL_INDEX;
  if (under(i.target, DIST_KERNEL)) return i.target !== path.join(DIST_KERNEL, 'index.js');
  return false;
}

describe('layering', () => {
  it('events/, machines/ and config/ import nothing from kernel/', () => {
    const bad = sourceImports.filter((i) => /^(events|machines|config)\//.test(i.file) && i.target !== undefined && under(i.target, KERNEL));
    expect(bad.map(describeImport)).toEqual([]);
  });

  it('no source file outside kernel/ imports koffi', () => {
    const bad = sourceImports.filter((i) => !i.file.startsWith('kernel/') && (i.spec === 'koffi' || i.spec.startsWith('koffi/')));
    expect(bad.map(describeImport)).toEqual([]);
  });

  it('outside kernel/, only kernel/index.js is imported (sources and bench; tests but those of kernel internals)', () => {
    const outside = [...sourceImports.filter((i) => !i.file.startsWith('kernel/')), ...testImports.filter((i) => !KERNEL_INTERNAL_TESTS.some((d) => under(path.join(REPO_ROOT, i.file), d)))];
    expect(outside.filter(isDeepKernel).map(describeImport)).toEqual([]);
  });

  it('the kernel/ import graph has no cycle', () => {
    const graph = new Map<string, string[]>();
    for (const i of sourceImports) {
      if (!i.file.startsWith('kernel/')) continue;
      const edges = graph.get(i.file) ?? [];
      if (i.target !== undefined && under(i.target, KERNEL)) edges.push(path.relative(REPO_ROOT, i.target));
      graph.set(i.file, edges);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const g of graph.get(f) ?? []) {
        if (state.get(g) === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].join(' -> '));
        else if (!state.has(g)) visit(g);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f);
    expect(graph.size).toBeGreaterThan(30);
    expect(cycles).toEqual([]);
  });
});

/** The shared objects and native addons mapped into a fresh Node process after `code` ran (an ES module). */
function mappedAfter(code: string): { out: unknown; mapped: string[] } {
  const text = execFileSync(process.execPath, ['--input-type=module', '-e', `${code}
process.stdout.write(JSON.stringify({ out, maps: (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8') }));`], { encoding: 'utf8' });
  const { out, maps } = JSON.parse(text) as { out: unknown; maps: string };
  const mapped = new Set<string>();
  for (const line of maps.split('\n')) {
    const p = line.trim().split(/\s+/)[5];
    if (p?.startsWith('/')) mapped.add(p);
  }
  return { out, mapped: [...mapped] };
}

const isNative = (p: string) => (p.endsWith('.node') && p.includes('koffi')) || /libseccomp\.so/.test(p);

describe('no native code for validation', () => {
  it('specToSetup of a config with a seccomp profile maps neither koffi nor libseccomp (importing kernel/ does)', () => {
    const url = (rel: string) => JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'dist', rel)).href);
    const b = makeBundle();
    try {
      const file = path.join(b.dir, 'config.json');
      const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
      const config = execFileSync(process.execPath, ['--input-type=module', '-e', `const { defaultSeccomp } = await import(${url('config/index.js')});
process.stdout.write(JSON.stringify(defaultSeccomp(['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'])));`], { encoding: 'utf8' });
      spec.linux.seccomp = JSON.parse(config);
      fs.writeFileSync(file, JSON.stringify(spec));

      const validated = mappedAfter(`const fs = await import('node:fs');
const { specToSetup } = await import(${url('config/index.js')});
const { setup } = specToSetup(JSON.parse(fs.readFileSync(${JSON.stringify(file)}, 'utf8')), ${JSON.stringify(b.dir)});
const out = { rules: setup.seccomp?.rules.length ?? 0, rootfs: setup.rootfs };`);
      expect(validated.out).toMatchObject({ rootfs: fs.realpathSync(b.rootfs) });
      expect((validated.out as { rules: number }).rules).toBeGreaterThan(0);
      expect(validated.mapped.filter(isNative)).toEqual([]);

      // The same check sees them once the kernel layer is loaded and asked about a syscall name.
      const kernel = mappedAfter(`const { knownSyscall } = await import(${url('kernel/index.js')});
const out = knownSyscall('read');`);
      expect(kernel.out).toBe(true);
      expect(kernel.mapped.filter((p) => p.endsWith('.node') && p.includes('koffi'))).toHaveLength(1);
      expect(kernel.mapped.some((p) => /libseccomp\.so/.test(p))).toBe(true);
    } finally {
      b.cleanup();
    }
  });
});
