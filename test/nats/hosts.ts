/**
 * Test hosts for the NATS command tests: a Supervisor on a private state root (embedded journal) with its
 * command service on a given connection, and cleanup that force-deletes whatever containers a test left.
 * The test servers have no authentication, so hosts serve on a trusted network by default, under a policy
 * whose bundle root is /tmp (where the test bundles are made) and whose anonymous callers have the default
 * grant: what the tests ask for is what any remote caller may.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { CordonCommandError } from '../../client/cordon-client.js';
import { type CommandService, type CommandServiceOptions, serveCommands } from '../../actors/command-service.js';
import { destroyAll } from '../fixtures/containers.js';
import { Supervisor } from '../../actors/supervisor.js';

/** A supervisor serving commands. */
export interface TestHost {
  host: string;
  root: string;
  bundleRoot: string;
  sup: Supervisor;
  svc: CommandService;
  /** Stop serving and supervising, force-delete every container, remove the roots. */
  cleanup(): Promise<void>;
}

/** The command service options of test hosts: a trusted network (the test servers have no authentication), bundles under /tmp. */
export const TEST_SERVICE: CommandServiceOptions = { trustedNetwork: true, policy: { bundleRoots: ['/tmp'] } };

/** Start a supervisor for `host` on a fresh root and serve its commands on `nc` (with `svc`'s options, default TEST_SERVICE). */
export async function startHost(nc: NatsConnection, host: string, extra: Partial<Parameters<typeof Supervisor.start>[0]> = {}, svcOpts: CommandServiceOptions = TEST_SERVICE): Promise<TestHost> {
  const root = mkdtempSync(`/tmp/cordon-nats-${host}-`);
  const bundleRoot = mkdtempSync(`/tmp/cordon-nats-bundles-${host}-`);
  const sup = await Supervisor.start({ root, host, ...extra });
  let svc: CommandService;
  try {
    svc = serveCommands(sup, nc, { host, bundleRoot, ...svcOpts });
  } catch (e) {
    await sup.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(bundleRoot, { recursive: true, force: true });
    throw e;
  }
  return {
    host,
    root,
    bundleRoot,
    sup,
    svc,
    async cleanup() {
      await svc.stop();
      await sup.stop();
      await destroyAll(root);
      rmSync(root, { recursive: true, force: true });
      rmSync(bundleRoot, { recursive: true, force: true });
    },
  };
}

/** The CordonCommandError a command fails with (fails the test when it succeeds or fails otherwise). */
export async function failure(p: Promise<unknown>): Promise<CordonCommandError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(CordonCommandError);
    return e as CordonCommandError;
  }
  throw new Error('expected the command to fail');
}
