/**
 * The EventStore contract, implemented by the embedded journal and by JetStream: append with optimistic
 * concurrency per container, read from a sequence, subscribe live.
 */
import type { CordonEvent, NewEvent } from './schema.js';

/** The container's sequence did not match what the writer expected: someone else appended first. */
export class ConcurrencyError extends Error {
  readonly containerId: string;
  readonly expected: number;
  readonly actual: number;

  constructor(containerId: string, expected: number, actual: number) {
    super(`container ${containerId}: expected sequence ${expected}, the log has ${actual}`);
    this.name = 'ConcurrencyError';
    this.containerId = containerId;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Options of append. */
export interface AppendOptions {
  /** The container's last sequence the writer saw; the append fails with ConcurrencyError if it moved on. */
  expectedContainerSeq?: number;
}

/** Where events are kept. */
export interface EventStore {
  /** Append events of ONE container atomically (one fsync / one publish batch); resolves with them numbered. */
  append(events: NewEvent[], opts?: AppendOptions): Promise<CordonEvent[]>;
  /** Stored events with seq >= fromSeq, in order. */
  read(fromSeq?: number): Promise<CordonEvent[]>;
  /** Live events appended after subscribing (by this or another process); returns the unsubscribe function. */
  subscribe(listener: (e: CordonEvent) => void): () => void;
  /** Highest host-wide sequence stored (0 when empty). */
  lastSeq(): number;
  /** Highest sequence of a container (0 when it has none). */
  containerSeq(containerId: string): number;
  close(): Promise<void>;
}
