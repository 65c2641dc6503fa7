#!/usr/bin/env node
// The `cordon` command: runs the compiled CLI (npm ci builds dist/ through the prepare script). The bundled
// form (scripts/bundle-cli.mjs: a few CommonJS chunks instead of ~150 modules) is used when it was built from
// the current dist/, i.e. is not older than dist/cli/main.js; otherwise dist/cli/main.js itself.
//
// The bundle's chunks are compiled with a V8 code cache (dist/cli-bundle/.v8-cache/, one file per chunk and
// Node version): the first process that loads a chunk writes, when it exits, the code V8 compiled for it while
// it ran, and later processes skip parsing and compiling it again. V8 refuses a cache that does not match the
// source or the engine (it is then written anew); one that cannot be written (a read-only install) is skipped.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const mtime = (rel) => {
  try {
    return statSync(path.join(dist, rel)).mtimeMs;
  } catch {
    return -1;
  }
};

/** Require `file` with every chunk of its directory compiled through a V8 code cache. */
function requireWithCodeCache(file) {
  const dir = path.dirname(file);
  const cacheDir = path.join(dir, '.v8-cache');
  const tag = `${process.version}-${process.arch}`;
  const fresh = [];
  const compile = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    if (path.dirname(filename) !== dir) return compile.call(this, content, filename);
    const cacheFile = path.join(cacheDir, `${path.basename(filename)}.${tag}`);
    let cachedData;
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // not cached yet
    }
    const script = new vm.Script(Module.wrap(content), { filename, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
    if (cachedData === undefined || script.cachedDataRejected) fresh.push({ script, cacheFile });
    const fn = script.runInThisContext({ displayErrors: true });
    return fn.call(this.exports, this.exports, createRequire(filename), this, filename, dir);
  };
  process.once('exit', () => {
    for (const { script, cacheFile } of fresh) {
      try {
        mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
        renameSync(tmp, cacheFile);
      } catch {
        // a cache is only a speed-up
      }
    }
  });
  return createRequire(import.meta.url)(file);
}

const bundled = mtime('cli-bundle/main.cjs');
const { main } = bundled >= 0 && bundled >= mtime('cli/main.js') ? requireWithCodeCache(path.join(dist, 'cli-bundle', 'main.cjs')) : await import('../dist/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
