/**
 * The v1 freezer (freezer.state), driven as runc 1.1 drives it: write FROZEN and read back until the
 * kernel stops reporting FREEZING, with an occasional thaw-and-sleep so a cgroup whose processes keep
 * forking still gets frozen; thaw on failure. One step sequence, run synchronously (signalAll) or
 * asynchronously (freeze()).
 */
import { readCgroupFile, readOptionalFile, sleep, sleepSync, writeCgroupFile } from '../files.js';
import { CgroupError } from '../../../config/cgroup-error.js';

const STATE = 'freezer.state';

/** What the freeze loop asks its driver to do between steps: sleep this many ms (0 = just yield). */
type Pause = number;

function* freezeSteps(dir: string): Generator<Pause, void, void> {
  try {
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        writeCgroupFile(dir, STATE, 'THAWED', 'freezer');
        yield 10;
      }
      writeCgroupFile(dir, STATE, 'FROZEN', 'freezer');
      if (i % 25 === 24) yield 1;
      const state = readCgroupFile(dir, STATE, 'freezer').trim();
      if (state === 'FREEZING') {
        yield 0;
        continue;
      }
      if (state === 'FROZEN') return;
      throw new CgroupError(`freezer: unexpected state ${state} while freezing`, `${dir}/${STATE}`, 'freezer');
    }
    throw new CgroupError('freezer: unable to freeze (the cgroup stays FREEZING)', `${dir}/${STATE}`, 'freezer', 'EBUSY');
  } catch (e) {
    // Leaving a cgroup FREEZING or FROZEN after a failure is dangerous: thaw it back.
    try {
      writeCgroupFile(dir, STATE, 'THAWED', 'freezer');
    } catch {
      // The original error matters more.
    }
    throw e;
  }
}

/** Freeze, sleeping synchronously between retries. */
export function freezeV1Sync(dir: string): void {
  for (const pause of freezeSteps(dir)) if (pause > 0) sleepSync(pause);
}

/** Freeze, yielding to the event loop between retries; resolves once freezer.state reads FROZEN. */
export async function freezeV1(dir: string): Promise<void> {
  for (const pause of freezeSteps(dir)) await (pause > 0 ? sleep(pause) : new Promise<void>((r) => setImmediate(r)));
}

/** Thaw and wait until freezer.state reads THAWED (up to 10 s). */
export async function thawV1(dir: string): Promise<void> {
  writeCgroupFile(dir, STATE, 'THAWED', 'freezer');
  for (let i = 0; i < 1000; i++) {
    if (readCgroupFile(dir, STATE, 'freezer').trim() === 'THAWED') return;
    await sleep(10);
  }
  throw new CgroupError('freezer: the cgroup did not thaw within 10 s', `${dir}/${STATE}`, 'freezer', 'ETIMEDOUT');
}

/** Thaw synchronously (no wait). */
export function thawV1Sync(dir: string): void {
  writeCgroupFile(dir, STATE, 'THAWED', 'freezer');
}

/**
 * True when the cgroup itself is frozen (runc's GetState: FROZEN only counts when freezer.self_freezing
 * is 1, i.e. not merely frozen through an ancestor; FREEZING is waited out).
 */
export function isFrozenV1(dir: string): boolean {
  for (let i = 0; i < 1000; i++) {
    const state = readOptionalFile(dir, STATE)?.trim();
    if (state === undefined || state === 'THAWED') return false;
    if (state === 'FROZEN') {
      const self = readOptionalFile(dir, 'freezer.self_freezing');
      return self === undefined ? true : self.trim() === '1';
    }
    sleepSync(1);
  }
  return false;
}
