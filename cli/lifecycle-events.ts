/**
 * `cordon events` without a container id: the host's lifecycle events from the journal — a human line
 * each, or JSON lines with `--format json` — following live appends until interrupted, with docker-style
 * filters (`--filter container=ID`, `--filter action=A`; same key ORs, different keys AND), `--since` /
 * `--until` times, `--since-seq N` and `--no-follow`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JournalStore } from '../events/journal.js';
import { type EventFilter, events$ } from '../events/observable.js';
import { type CordonEvent, EVENT_ACTIONS, type EventAction } from '../events/schema.js';
import { type ParsedArgs, UsageError, bool, str } from './args.js';
import { openJournal } from '../actors/event-recorder.js';
export { LIFECYCLE_EVENT_FLAGS } from './event-flags.js';

/** A time flag: RFC 3339, a date, unix seconds, or a Go duration ago ("10m"). */
export function parseTime(flag: string, v: string): Date {
  if (/^\d+(\.\d+)?$/.test(v)) return new Date(Number(v) * 1000);
  const ago = /^(\d+)(ms|s|m|h)$/.exec(v);
  if (ago) return new Date(Date.now() - Number(ago[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[ago[2] as 'ms']);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--${flag}: invalid time ${JSON.stringify(v)}`);
  return new Date(t);
}

/** The EventFilter a command line asks for. */
export function filterOf(p: ParsedArgs): EventFilter {
  const f: EventFilter = {};
  const ids: string[] = [], actions: EventAction[] = [];
  const raw = p.flags.filter;
  for (const kv of Array.isArray(raw) ? raw : []) {
    const m = /^(container|action)=(.+)$/.exec(kv);
    if (!m) throw new UsageError(`--filter: expected container=ID or action=ACTION, got ${JSON.stringify(kv)}`);
    if (m[1] === 'container') ids.push(m[2]);
    else if ((EVENT_ACTIONS as readonly string[]).includes(m[2])) actions.push(m[2] as EventAction);
    else throw new UsageError(`--filter action: unknown action ${JSON.stringify(m[2])} (one of ${EVENT_ACTIONS.join(', ')})`);
  }
  if (ids.length) f.containerId = ids;
  if (actions.length) f.action = actions;
  if (str(p, 'since')) f.since = parseTime('since', str(p, 'since') as string);
  if (str(p, 'until')) f.until = parseTime('until', str(p, 'until') as string);
  const ss = str(p, 'since-seq');
  if (ss !== undefined) {
    if (!/^\d+$/.test(ss)) throw new UsageError(`--since-seq: expected a number, got ${JSON.stringify(ss)}`);
    f.sinceSeq = Number(ss);
  }
  if (bool(p, 'no-follow') || f.until) f.follow = false;
  if (f.follow === false && f.sinceSeq === undefined && !f.since) f.sinceSeq = 1;
  return f;
}

/** One event as a human line. */
export function humanLine(e: CordonEvent): string {
  const moved = e.from && e.to && e.from !== e.to ? ` ${e.from} -> ${e.to}` : '';
  const attrs = Object.entries(e.attributes).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ');
  return `${e.time} #${e.seq} container ${e.action} ${e.containerId}${moved}${attrs ? ` (${attrs})` : ''}`;
}

/** Stream the journal under `root` to stdout; resolves when done (no-follow) or on SIGINT/SIGTERM. */
export async function streamEvents(root: string, p: ParsedArgs): Promise<number> {
  const format = str(p, 'format') ?? 'human';
  if (format !== 'human' && format !== 'json') throw new UsageError(`--format: expected human or json, got ${JSON.stringify(format)}`);
  const filter = filterOf(p);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const store = openJournal(path.join(root, 'events.journal'), { onWarning: (m) => process.stderr.write(`cordon: warning: ${m}\n`) });
  try {
    // The journal's file watch does not hold the event loop open: while following, this timer does (else the
    // process would end at once with Node's unsettled top-level await code 13).
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      await new Promise<void>((resolve, reject) => {
        const sub = events$(store, filter).subscribe({
          next: (e) => process.stdout.write((format === 'json' ? JSON.stringify(e) : humanLine(e)) + '\n'),
          error: reject,
          complete: resolve,
        });
        const stop = () => {
          sub.unsubscribe();
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    } finally {
      clearInterval(keepAlive);
    }
  } finally {
    await store.close();
  }
  return 0;
}
