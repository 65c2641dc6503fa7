// Bundles the compiled CLI (dist/cli/main.js and the ~90 modules it imports) into a few files under
// dist/cli-bundle/, so a fresh `cordon` process resolves and links a handful of modules instead of ~90
// (about 100 ms less CPU per command, see bench/RESULTS.md). Packages stay external (koffi loads a native
// addon; node resolves them as before); verbs loaded on demand (daemon, the events stream) stay separate
// chunks. bin/cordon.js uses the bundle only when it is at least as new as dist/cli/main.js, so a plain
// `tsc` build never runs stale code. Without the bundler (production install) this does nothing.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const input = path.join(repo, 'dist', 'cli', 'main.js');
const out = path.join(repo, 'dist', 'cli-bundle');

let rolldown;
try {
  ({ rolldown } = await import('rolldown'));
} catch {
  process.stderr.write('bundle-cli: no bundler installed (rolldown comes with the dev dependencies); bin/cordon.js runs dist/cli/main.js\n');
  process.exit(0);
}
/**
 * Node builtins through require, not import: an ESM import of a builtin builds a facade that reads every
 * export, running lazy getters (util's AbortController, fs's streams, ...) that cost a fresh process ~25 ms.
 * koffi too: its package's ESM entry wraps the CommonJS one, which costs ~15 ms more than requiring it.
 * The module objects are the same; only these top-of-chunk import statements are rewritten.
 */
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  renderChunk(code) {
    let used = false;
    const rewritten = code.replace(/^import\s+(.+?)\s+from\s+"(node:[a-z_/]+|koffi)";$/gm, (all, what, id) => {
      const parts = [];
      const m = /^(?:([\w$]+)\s*,?\s*)?(?:\{([^}]*)\})?$/.exec(what.trim());
      const star = /^\*\s+as\s+([\w$]+)$/.exec(what.trim());
      if (star) parts.push(`const ${star[1]} = __cordonRequire("${id}");`);
      else if (m && (m[1] || m[2] !== undefined)) {
        if (m[1]) parts.push(`const ${m[1]} = __cordonRequire("${id}");`);
        if (m[2] !== undefined) {
          const names = m[2].split(',').map((x) => x.trim()).filter(Boolean).map((x) => x.replace(/^([\w$]+)\s+as\s+([\w$]+)$/, '$1: $2'));
          parts.push(`const { ${names.join(', ')} } = __cordonRequire("${id}");`);
        }
      } else return all;
      used = true;
      return parts.join(' ');
    });
    if (!used) return null;
    return `import { createRequire as __cordonCreateRequire } from "node:module";\nconst __cordonRequire = __cordonCreateRequire(import.meta.url);\n${rewritten}`;
  },
};
/** Packages merged into the bundle (pure JavaScript, used on every verb's path). */
const BUNDLED_PACKAGES = new Set(['xstate', 'eventemitter3']);

const tmp = `${out}.tmp-${process.pid}`;
fs.rmSync(tmp, { recursive: true, force: true });
try {
  const bundle = await rolldown({
    input: { main: input },
    platform: 'node',
    // Bare specifiers (packages) and node: builtins stay imports; this repository's modules are merged, and so
    // are xstate and eventemitter3 (needed by every verb that changes a container): xstate's ESM build,
    // tree-shaken, loads in about half the time of the CommonJS entry that an import of 'xstate' resolves to.
    external: (id) => !id.startsWith('.') && !path.isAbsolute(id) && !id.startsWith('\0') && !BUNDLED_PACKAGES.has(id),
    logLevel: 'warn',
    plugins: [builtinsThroughRequire],
  });
  await bundle.write({ dir: tmp, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js', sourcemap: false, ...(process.env.SPLIT ? JSON.parse(process.env.SPLIT, (k, v) => (k === 'test' ? new RegExp(v) : v)) : {}) });
  await bundle.close();
  fs.rmSync(out, { recursive: true, force: true });
  fs.renameSync(tmp, out);
  process.stderr.write(`bundle-cli: wrote ${path.relative(repo, out)}/ (${fs.readdirSync(out).length} files)\n`);
} catch (e) {
  // Never fail the build over the bundle: without it bin/cordon.js runs dist/cli/main.js (slower start, same code).
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(out, { recursive: true, force: true });
  process.stderr.write(`bundle-cli: not bundled (${e instanceof Error ? e.message : String(e)}); bin/cordon.js runs dist/cli/main.js\n`);
}
