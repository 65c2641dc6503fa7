/** The shared EventStore contract on the embedded journal (JournalStore). */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { LIFECYCLE_PROJECTION } from '../../actors/event-recorder.js';
import { type JournalProjection, JournalStore } from '../../events/journal.js';
import { storeContract } from './store-contract.js';
import { openJournal } from '../../actors/event-recorder.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'cordon-contract-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

storeContract('embedded journal', {
  async fresh() {
    const dir = path.join(tmp, `j${++n}`);
    mkdirSync(dir);
    const file = path.join(dir, 'events.journal');
    const store = openJournal(file);
    return {
      store,
      reopen: async () => {
        await store.close();
        return openJournal(file);
      },
    };
  },
});

// The same contract while the journal writes a snapshot every other record and every reopen starts from one.
storeContract('embedded journal, snapshotting every 2 records', {
  async fresh() {
    const dir = path.join(tmp, `j${++n}`);
    mkdirSync(dir);
    const file = path.join(dir, 'events.journal');
    const opts = { projection: LIFECYCLE_PROJECTION as JournalProjection<unknown>, snapshotAfter: { records: 2, bytes: 1 << 30 } };
    const store = openJournal(file, opts);
    return {
      store,
      reopen: async () => {
        await store.close();
        return openJournal(file, opts);
      },
    };
  },
});
