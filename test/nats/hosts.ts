/**
 * Test hosts for the NATS command tests: a Supervisor on a private state root (embedded journal) with its
 * command service on a given connection, and cleanup that force-deletes whatever containers a test left.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { CordonCommandError } from '../../client/cordon-client.js';
import { type CommandService, serveCommands } from '../../actors/command-service.js';
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

/** Start a supervisor for `host` on a fresh root and serve its commands on `nc`. */
export async function startHost(nc: NatsConnection, host: string, extra: Partial<Parameters<typeof Supervisor.start>[0]> = {}): Promise<TestHost> {
  const root = mkdtempSync(`/tmp/cordon-nats-${host}-`);
  const bundleRoot = mkdtempSync(`/tmp/cordon-nats-bundles-${host}-`);
  const sup = await Supervisor.start({ root, host, ...extra });
  const svc = serveCommands(sup, nc, { host, bundleRoot });
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
