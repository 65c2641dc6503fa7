/**
 * The JetStream side of the event log: the stream CORDON_EVENTS (subjects `cordon.*.events.>`, file
 * storage), one subject per event `cordon.<host>.events.<containerId>.<action>`, the CordonEvent JSON as
 * payload and its id as Nats-Msg-Id, so a retried publish is stored once. Used by JetStreamStore and by
 * the daemon's outbox publisher.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type CordonEvent, validateEvent } from './schema.js';

/** The stream that captures every host's events. */
export const EVENTS_STREAM = 'CORDON_EVENTS';

/** Subjects of the events stream. */
export const EVENTS_SUBJECTS = 'cordon.*.events.>';

/** The subject of one event. */
export function eventSubject(host: string, e: Pick<CordonEvent, 'containerId' | 'action'>): string {
  return `cordon.${host}.events.${e.containerId}.${e.action}`;
}

/** The filter for all events of a host. */
export function hostEventsFilter(host: string): string {
  return `cordon.${host}.events.>`;
}

/** Options of the events stream when it has to be created. */
export interface EventsStreamOptions {
  /** Replicas (1, or 3 on a cluster). */
  replicas?: number;
  /** Window in which a repeated msgID is dropped (ms; default 10 minutes). */
  duplicateWindowMs?: number;
}

/** Create the events stream if it is missing (an existing one is used as it is). */
export async function ensureEventsStream(jsm: JetStreamManager, o: EventsStreamOptions = {}): Promise<void> {
  try {
    await jsm.streams.info(EVENTS_STREAM);
    return;
  } catch (e) {
    if (!/not found/i.test((e as Error).message)) throw e;
  }
  try {
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: [EVENTS_SUBJECTS],
      storage: StorageType.File,
      num_replicas: o.replicas ?? 1,
      duplicate_window: (o.duplicateWindowMs ?? 600_000) * 1_000_000,
    });
  } catch (e) {
    if (!/already in use|already exists/i.test((e as Error).message)) throw e; // another host created it first
  }
}

/** An event as stored in the stream, with its stream sequence. */
export interface StreamedEvent {
  event: CordonEvent;
  streamSeq: number;
}

/** JetStream handles of a connection. */
export interface EventsJetStream {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** JetStream client and manager for a connection (API timeout `timeoutMs`, default 5 s). */
export async function eventsJetStream(nc: NatsConnection, timeoutMs = 5000): Promise<EventsJetStream> {
  return { nc, js: jetstream(nc, { timeout: timeoutMs }), jsm: await jetstreamManager(nc, { timeout: timeoutMs }) };
}

const decode = (data: Uint8Array) => validateEvent(JSON.parse(new TextDecoder().decode(data)));

/** The host's last event in the stream (null when it has none). */
export async function lastHostEvent(jsm: JetStreamManager, host: string): Promise<StreamedEvent | null> {
  try {
    const m = await jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: hostEventsFilter(host) });
    return m ? { event: decode(m.data), streamSeq: m.seq } : null;
  } catch (e) {
    if (/no message found|not found/i.test((e as Error).message)) return null;
    throw e;
  }
}

/**
 * Read the host's events from stream sequence `fromStreamSeq` (default the start) until one with host
 * seq >= `untilSeq` or the last one stored, in order, through an ordered consumer.
 */
export async function readHostEvents(js: JetStreamClient, host: string, untilSeq: number, onEvent: (s: StreamedEvent) => void, fromStreamSeq?: number): Promise<void> {
  if (untilSeq <= 0) return;
  const c = await js.consumers.get(EVENTS_STREAM, {
    filter_subjects: hostEventsFilter(host),
    ...(fromStreamSeq ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromStreamSeq } : { deliver_policy: DeliverPolicy.All }),
  });
  const it = await c.consume({ max_messages: 512 });
  try {
    for await (const m of it) {
      const event = decode(m.data);
      onEvent({ event, streamSeq: m.seq });
      if (event.seq >= untilSeq || m.info.pending === 0) break; // the end asked for, or of what is stored
    }
  } finally {
    await it.close().catch(() => {});
  }
}

/** Publish one event with its id as msgID; resolves with the stream sequence (the first one for a duplicate). */
export async function publishEvent(js: JetStreamClient, host: string, e: CordonEvent, timeoutMs = 5000): Promise<{ streamSeq: number; duplicate: boolean }> {
  const ack = await js.publish(eventSubject(host, e), JSON.stringify(e), { msgID: e.id, timeout: timeoutMs });
  return { streamSeq: ack.seq, duplicate: ack.duplicate };
}
