// Bundles the compiled CLI (dist/cli/main.js and the ~150 modules it imports) into CommonJS chunks under
// dist/cli-bundle/, so a fresh `cordon` process loads a few files instead of ~150, and bin/cordon.js can
// compile them with a V8 code cache. Verbs loaded on demand (each verb's actor, the daemon, the events stream)
// stay separate chunks. bin/cordon.js uses the bundle only when it is at least as new as dist/cli/main.js, so
// a plain `tsc` build never runs stale code. Without the bundler (production install) this does nothing.
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
 * Packages that stay require()s: native code (koffi), and CommonJS packages that are big and only on some
 * verbs' paths (NATS, rxjs, ws). Every other package is merged in (xstate and eventemitter3 on every verb's
 * path; @statelyai/inspect, which is ESM only, so the CommonJS bundle can hold it).
 */
const EXTERNAL = [/^node:/, /^koffi$/, /^ws$/, /^@nats-io\//, /^rxjs(\/|$)/];

const tmp = `${out}.tmp-${process.pid}`;
fs.rmSync(tmp, { recursive: true, force: true });
try {
  const bundle = await rolldown({
    input: { main: input },
    platform: 'node',
    external: (id) => !id.startsWith('.') && !path.isAbsolute(id) && !id.startsWith('\0') && EXTERNAL.some((r) => r.test(id)),
    logLevel: 'warn',
  });
  // CommonJS, so bin/cordon.js can compile each chunk with a V8 code cache (Node 20 has none for ES modules).
  await bundle.write({ dir: tmp, format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: '[name]-[hash].cjs', sourcemap: false });
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
