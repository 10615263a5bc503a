// The event record shared by the witness daemon (history, operator API), the notifiers and the
// dashboard. One shape everywhere, so a notification, a history line and an API entry always agree.

/**
 * One thing that happened to a cluster, as seen by the witness.
 *
 * `type` is one of the core's NotifyEvent names (core/actions.ts) plus the shell's own
 * 'notification-failed', 'witness-started' and 'operator-command'.
 */
export interface PgvipEvent {
  /** Strictly increasing per witness (across clusters and restarts): the history cursor. */
  readonly id: number;
  /** ISO-8601 wall-clock time at which the witness recorded it. */
  readonly at: string;
  readonly cluster: string;
  readonly type: string;
  /** The node the event is about, when there is one. */
  readonly node: string | null;
  /** The witness's term for the cluster when the event was recorded. */
  readonly term: number;
  /** One human sentence. */
  readonly detail: string;
  /**
   * Operator commands only: who asked, as `name@address`. The name is what the client said
   * (x-pgvip-operator; the CLI sends the OS user name): every operator presents the same token, so
   * the witness cannot tell who it was, and says so with `operatorClaimed: true`.
   */
  readonly operator?: string;
  readonly operatorClaimed?: true;
}

/** Somewhere events are pushed to (webhook, command, e-mail, ...). */
export interface Notifier {
  /** Fire-and-forget: never blocks the caller and never throws (core order rule 5). */
  notify(e: PgvipEvent): void;
  /** Flush or abandon pending deliveries; resolves when nothing is in flight any more. */
  close(): Promise<void>;
}

/** A notifier that drops everything: used when no notification is configured. */
export const nullNotifier: Notifier = {
  notify(): void {
    // Intentionally nothing: no notification channel is configured.
  },
  close(): Promise<void> {
    return Promise.resolve();
  },
};
