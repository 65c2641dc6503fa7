/**
 * `cordon journal check|repair`: look after the host's event journal. check reads every record (CRC, seq
 * continuity, schema) and reports records, containers, damaged ranges, markers, earlier quarantines and the
 * snapshot, changing nothing (exit 1 when it finds damage); repair quarantines every damaged range, cuts a
 * torn tail and writes the snapshot anew.
 */
import fs from 'node:fs';
import path from 'node:path';
import { openRecorderJournal } from '../actors/event-recorder.js';
import { describeEntry, seqsText } from '../events/journal-quarantine.js';
import { type JournalCheckReport, checkJournal, repairHint, repairJournalFile } from '../events/journal-repair.js';
import { snapshotPathOf } from '../events/journal-snapshot.js';
import { withFileLock } from '../kernel/index.js';
import { UsageError, parseArgs, str } from './args.js';

const warn = (m: string) => process.stderr.write(`cordon: warning: ${m}\n`);

/** Run `journal SUBCOMMAND [--root DIR] [--format json]` on the state root `root`; resolves to the exit code. */
export async function journalVerb(rest: string[], root: string): Promise<number> {
  const [sub, ...args] = rest;
  const p = parseArgs(args, [{ name: 'root' }, { name: 'format', short: ['f'] }]);
  if (p.args.length > 0) throw new UsageError(`journal ${sub}: unexpected argument ${JSON.stringify(p.args[0])}`);
  const file = path.join(str(p, 'root') ?? root, 'events.journal');
  const format = str(p, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--format: expected text or json, got ${JSON.stringify(format)}`);
  if (sub !== 'check' && sub !== 'repair') throw new UsageError('journal: expected check or repair (cordon journal check|repair [--root DIR] [--format json])');
  if (!fs.existsSync(file)) {
    process.stdout.write(format === 'json' ? `${JSON.stringify({ journal: file, exists: false, clean: true })}\n` : `journal ${file}: none (nothing recorded yet)\n`);
    return 0;
  }
  if (sub === 'check') {
    const r = checkJournal(file, withFileLock);
    process.stdout.write(format === 'json' ? `${JSON.stringify(r)}\n` : checkText(r));
    return r.clean ? 0 : 1;
  }
  const done = repairJournalFile(file, withFileLock);
  // The snapshot is written anew from a full read of the repaired file.
  fs.rmSync(snapshotPathOf(file), { force: true });
  const store = openRecorderJournal(file, warn);
  let seq = 0;
  try {
    store.snapshot(1);
    seq = store.lastSeq();
  } finally {
    await store.close();
  }
  if (format === 'json') process.stdout.write(`${JSON.stringify({ journal: file, quarantined: done.entries.map(({ bytes: _b, ...q }) => q), truncatedBytes: done.truncatedBytes, snapshotSeq: seq })}\n`);
  else {
    const lines = done.entries.length ? done.entries.map((q) => `${describeEntry(q)}\n`) : [`journal ${file}: no damage found\n`];
    process.stdout.write(`${lines.join('')}snapshot ${snapshotPathOf(file)} written anew (up to seq ${seq})\n`);
  }
  return 0;
}

/** check's report as text. */
function checkText(r: JournalCheckReport): string {
  const out = [`journal ${r.journal}: ${r.bytes} bytes, ${r.records} records (last seq ${r.lastSeq}), ${r.containers} containers`];
  if (r.markers.length) {
    out.push(`quarantine markers: ${r.markers.length}`);
    for (const m of r.markers) out.push(`  byte ${m.offset} (${m.length} bytes): stands for ${seqsText(m.seqs[0], m.seqs[1])}`);
  }
  if (r.damage.length) {
    out.push(`damaged: ${r.damage.length}`);
    for (const d of r.damage) {
      const who = d.containers.length ? `, container(s) ${d.containers.join(', ')}` : '';
      out.push(`  byte ${d.offset}, ${d.length} bytes${d.tail ? ' (torn tail)' : ''}: ${seqsText(d.seqs[0], d.seqs[1], d.tail)}: ${d.reason}${who}`);
    }
  }
  out.push(`quarantine file ${r.quarantineFile}: ${r.quarantined.length ? `${r.quarantined.length} entries` : 'none'}`);
  for (const q of r.quarantined) {
    const who = q.containers.length ? `, container(s) ${q.containers.join(', ')}` : '';
    out.push(`  ${q.time}: byte ${q.offset}, ${q.length} bytes, ${seqsText(q.seqs[0], q.seqs[1], q.action === 'cut')}, ${q.action} (${q.reason})${who}`);
  }
  const s = r.snapshot;
  out.push(`snapshot ${s.file}: ${s.state}${s.seq !== undefined ? ` (seq ${s.seq}, byte ${s.offset})` : ''}`);
  out.push(r.clean ? 'clean' : `DAMAGED: ${repairHint(r.journal)} (or let the next cordon command quarantine it)`);
  return `${out.join('\n')}\n`;
}
