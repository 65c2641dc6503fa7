/**
 * The soak in its short form (CI): CLI, library and NATS verbs at once on 16 containers for 45 s with the
 * daemon and nats-server SIGKILLed and the disk filled at random moments; zero invariant violations and no
 * failure that says a bug. CORDON_SOAK_SECONDS / CORDON_SOAK_CONTAINERS / CORDON_SOAK_SEED run the long form.
 */
import { expect, it } from 'vitest';
import { soak } from './soak.js';

const seconds = Number(process.env.CORDON_SOAK_SECONDS ?? 45);
const containers = Number(process.env.CORDON_SOAK_CONTAINERS ?? 16);
const seed = Number(process.env.CORDON_SOAK_SEED ?? 7);

it(`soak: ${seconds} s of random verbs from the CLI, the library and NATS on ${containers} containers, the daemon and nats-server killed and the disk filled at random: no leak, no disagreement`, async () => {
  const r = await soak({ seconds, containers, seed, log: (l) => process.stderr.write(`${l}\n`) });
  process.stderr.write(`soak report: ${JSON.stringify(r)}\n`);
  // It did what it says: verbs from every door, kills of both, fills of the disk, and most verbs succeeding.
  expect(r.verbs.cli).toBeGreaterThan(0);
  expect(r.verbs.library).toBeGreaterThan(0);
  expect(r.verbs.nats).toBeGreaterThan(0);
  expect(r.daemonKills + r.natsKills + r.diskFills).toBeGreaterThan(2);
  expect(r.ok).toBeGreaterThan(0);
  expect(r.unexpected).toEqual([]);
  expect(r.problems).toEqual([]);
}, (seconds + 240) * 1000);
