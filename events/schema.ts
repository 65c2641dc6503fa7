/**
 * The event contract other services rely on (ARCHITECTURE.md, "Events"): one event per transition or
 * notable fact, versioned, with a validator that names every bad field.
 */
import { LifecycleError } from '../errors/index.js';
import { randomUUID } from 'node:crypto';

/** Version of the event schema; bumped on incompatible changes. */
export const EVENT_SCHEMA_VERSION = 1;

/** Every action an event can carry. */
export const EVENT_ACTIONS = ['create', 'start', 'pause', 'resume', 'checkpoint', 'restore', 'exit', 'oom', 'kill', 'update', 'exec-start', 'exec-exit', 'destroy', 'error', 'hook'] as const;

/** What happened. */
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** One stored event. `seq` is host-wide and gap-free; `containerSeq` counts the container's own events from 1. */
export interface CordonEvent {
  /** Schema version. */
  v: number;
  seq: number;
  containerSeq: number;
  /** UUID; the NATS msgID, so a retried publish is never stored twice. */
  id: string;
  /** RFC 3339 with nanoseconds. */
  time: string;
  /** Nanoseconds since the epoch (a JSON number: exact to about 0.25 µs). */
  timeNano: number;
  host: string;
  type: 'container';
  action: EventAction;
  containerId: string;
  /** Machine state before and after, for transitions. */
  from?: string;
  to?: string;
  /** pid, exitCode, signal, step, errno, ... */
  attributes: Record<string, unknown>;
}

/** An event before the store numbers it. */
export type NewEvent = Omit<CordonEvent, 'seq' | 'containerSeq'>;

/** An event that does not match the schema; `issues` names each bad field. */
export class EventSchemaError extends LifecycleError {
  readonly issues: string[];

  constructor(issues: string[]) {
    super('EventLogCorrupt', `invalid event: ${issues.join('; ')}`);
    this.name = 'EventSchemaError';
    this.issues = issues;
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Check a value against the schema; returns it typed or throws EventSchemaError. */
export function validateEvent(x: unknown, opts: { numbered?: boolean } = {}): CordonEvent {
  const issues: string[] = [];
  if (!isObj(x)) throw new EventSchemaError(['event: expected an object']);
  const need = (k: string, ok: boolean, what: string) => {
    if (!ok) issues.push(`${k}: ${what}, got ${JSON.stringify(x[k])}`);
  };
  need('v', x.v === EVENT_SCHEMA_VERSION, `expected schema version ${EVENT_SCHEMA_VERSION}`);
  if (opts.numbered !== false) {
    need('seq', Number.isSafeInteger(x.seq) && (x.seq as number) > 0, 'expected a positive integer');
    need('containerSeq', Number.isSafeInteger(x.containerSeq) && (x.containerSeq as number) > 0, 'expected a positive integer');
  }
  need('id', typeof x.id === 'string' && /^[0-9a-f-]{36}$/.test(x.id), 'expected a UUID');
  need('time', typeof x.time === 'string' && !Number.isNaN(Date.parse(x.time)), 'expected an RFC 3339 time');
  need('timeNano', typeof x.timeNano === 'number' && Number.isFinite(x.timeNano), 'expected a number of nanoseconds');
  need('host', typeof x.host === 'string' && x.host.length > 0, 'expected a non-empty string');
  need('type', x.type === 'container', 'expected "container"');
  need('action', (EVENT_ACTIONS as readonly unknown[]).includes(x.action), `expected one of ${EVENT_ACTIONS.join(', ')}`);
  need('containerId', typeof x.containerId === 'string' && x.containerId.length > 0, 'expected a non-empty string');
  if (x.from !== undefined) need('from', typeof x.from === 'string', 'expected a string');
  if (x.to !== undefined) need('to', typeof x.to === 'string', 'expected a string');
  need('attributes', isObj(x.attributes), 'expected an object');
  if (issues.length) throw new EventSchemaError(issues);
  return x as unknown as CordonEvent;
}

/** A fresh event (id, times) for `action` on `containerId`. */
export function newEvent(host: string, containerId: string, action: EventAction, attributes: Record<string, unknown> = {}, transition?: { from: string; to: string }): NewEvent {
  const now = Date.now();
  const sub = process.hrtime.bigint() % 1_000_000n;
  const time = new Date(now).toISOString().replace(/\.(\d{3})Z$/, (_m, ms: string) => `.${ms}${String(sub).padStart(6, '0')}Z`);
  const e: NewEvent = { v: EVENT_SCHEMA_VERSION, id: randomUUID(), time, timeNano: now * 1e6 + Number(sub), host, type: 'container', action, containerId, attributes };
  if (transition) {
    e.from = transition.from;
    e.to = transition.to;
  }
  return e;
}
