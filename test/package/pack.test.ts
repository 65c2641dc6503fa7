/**
 * The package as a user gets it: `npm pack` ships the built code, README and LICENSE (no tests, benchmarks or
 * source maps); the tarball installs into a fresh consumer project (dependencies from the npm cache that
 * setup's `npm ci` filled); strict TypeScript compiles against the types of its entry points `cordon`,
 * `cordon/client` and `cordon/nats`; and the compiled program drives a real container through them only.
 * A deep import (`cordon/dist/...`) is refused by the exports map, and the installed `cordon` command runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bundle, REPO_ROOT, makeBundle } from '../fixtures/bundle.js';
import { destroyAll } from '../fixtures/containers.js';

const work = mkdtempSync('/tmp/cordon-pack-');
const consumer = join(work, 'consumer');
const root = join(work, 'root');
let tarball: string;
let bundle: Bundle;
const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
delete env.NODE_EXTRA_CA_CERTS;

beforeAll(() => {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO_ROOT, env, encoding: 'utf8' });
  tarball = join(work, (JSON.parse(out) as Array<{ filename: string }>)[0].filename);
  bundle = makeBundle({ spec: (s) => void (s.process.args = ['sh', '-c', 'exit 4']) });
}, 120_000);

afterAll(async () => {
  await destroyAll(root);
  bundle?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships dist, bin, README and LICENSE; no tests, benchmarks, sources or maps', () => {
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/cordon.js', 'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/nats.js', 'dist/nats.d.ts']) expect(files, f).toContain(f);
    const bad = files.filter((f) => /^(test|bench|scripts|dist\/bench)\//.test(f) || /\.map$/.test(f) || (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)));
    expect(bad).toEqual([]);
  });

  it('installs into a fresh project, compiles strict TypeScript against its entry points and drives a container through them', () => {
    rmSync(consumer, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', consumer]);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    const typesNode = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string };
    execFileSync('npm', ['install', '--prefer-offline', '--include=optional', '--no-package-lock', tarball, `@types/node@${typesNode.version}`], { cwd: consumer, env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000 });
    writeFileSync(
      join(consumer, 'main.ts'),
      `import { Cordon, LifecycleError, ERROR_CODES, type CordonEvent, type ErrorCode, type ExitInfo } from 'cordon';
import { CordonClient, CordonCommandError } from 'cordon/client';
import { startNatsSupervisor, type NatsOptions } from 'cordon/nats';

const [root, bundle] = process.argv.slice(2) as [string, string];
const cordon = await Cordon.open({ root });
const seen: string[] = [];
const sub = cordon.events$({ containerId: 'pkg-1' }).subscribe((e: CordonEvent) => seen.push(e.action));
const c = await cordon.create('pkg-1', { bundle });
const before: string = (await c.state()).machine;
const exit: ExitInfo = await c.run();
await c.destroy();
let code: ErrorCode | undefined;
try {
  await c.start();
} catch (e) {
  if (e instanceof LifecycleError) code = e.code;
}
sub.unsubscribe();
await cordon.close();
const nats: NatsOptions = { servers: 'nats://127.0.0.1:1' };
console.log(JSON.stringify({ before, exit, code, seen, codes: ERROR_CODES.length, client: typeof CordonClient, commandError: CordonCommandError.name, nats: typeof startNatsSupervisor, servers: nats.servers }));
`,
    );
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out', noEmitOnError: true, skipLibCheck: false }, files: ['main.ts'] }),
    );
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', consumer], { cwd: consumer, env, encoding: 'utf8' });
    const out = execFileSync(process.execPath, [join(consumer, 'out/main.js'), root, bundle.dir], { cwd: consumer, env, encoding: 'utf8', timeout: 60_000 });
    const r = JSON.parse(out.trim().split('\n').at(-1) as string) as Record<string, unknown>;
    expect(r).toMatchObject({
      before: 'created',
      exit: { exitCode: 4, signal: null, oomKilled: false, unknown: false },
      code: 'ContainerNotExists',
      seen: ['create', 'start', 'exit', 'destroy'],
      client: 'function',
      commandError: 'CordonCommandError',
      nats: 'function',
    });
    expect(readdirSync(root).filter((e) => !e.startsWith('events.journal'))).toEqual([]);
  }, 300_000);

  it('refuses deep imports (the exports map is the surface) and the installed `cordon` command runs', () => {
    const deep = execFileSync(process.execPath, ['--input-type=module', '-e', "import('cordon/dist/actors/cordon.js').then(() => console.log('imported'), (e) => console.log(e.code))"], { cwd: consumer, env, encoding: 'utf8' });
    expect(deep.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    const version = execFileSync(join(consumer, 'node_modules/.bin/cordon'), ['--version'], { cwd: consumer, env, encoding: 'utf8' });
    expect(version).toMatch(/^cordon version 0\.1\.0\nspec: 1\.2\.0\n$/);
  });
});
