#!/usr/bin/env node
// The `cordon` command: runs the compiled CLI (npm ci builds dist/ through the prepare script). The bundled
// form (scripts/bundle-cli.mjs: a few modules instead of ~90, much less start-up work) is used when it was
// built from the current dist/, i.e. is not older than dist/cli/main.js; otherwise dist/cli/main.js itself.
import { statSync } from 'node:fs';

const dist = new URL('../dist/', import.meta.url);
const mtime = (rel) => {
  try {
    return statSync(new URL(rel, dist)).mtimeMs;
  } catch {
    return -1;
  }
};
const bundled = mtime('cli-bundle/main.js');
const { main } = await import(bundled >= 0 && bundled >= mtime('cli/main.js') ? '../dist/cli-bundle/main.js' : '../dist/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
