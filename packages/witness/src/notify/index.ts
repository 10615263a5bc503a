// The witness's notifier: fans each event out to the channels of a cluster's `notifications` block
// (webhooks, a command hook, e-mail). notify() only filters and queues; every channel delivers
// from its own bounded queue on later turns of the event loop, so a dead or hanging receiver can
// neither slow the daemon's loop nor grow its memory. A failed delivery is reported through
// onFailure (the daemon records it as a `notification-failed` history event), and such events are
// never notified themselves: a broken channel must not feed itself.
import { readSecretFile, type NotificationsConfig } from '@pgvip/shared';
import { Agent } from 'undici';
import type { Notifier, PgvipEvent } from '../events.js';
import { systemClock, type NotifierClock } from './clock.js';
import { runCommand } from './command.js';
import { EmailChannel } from './email.js';
import { eventFilter, type EventFilter } from './filter.js';
import { DeliveryQueue } from './queue.js';
import { retryPolicy, type RetryPolicy } from './retry.js';
import { deliverWebhook, webhookLabel } from './webhook.js';

export { systemClock, type NotifierClock } from './clock.js';
export { commandArgs, commandEnv } from './command.js';
export { eventSubject } from './email.js';
export { subscriptionName, subscriptionNameOf } from './event-names.js';
export { defaultRetryPolicy, type RetryPolicy } from './retry.js';
export { deliveryHeader, eventHeader, signatureHeader, signBody } from './webhook.js';

/** The event type the daemon records for a failed delivery; never sent anywhere itself. */
export const notificationFailedType = 'notification-failed';

/** The subset of a pino logger the notifier writes to. */
export interface NotifyLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface NotifierOptions {
  readonly logger: NotifyLogger;
  /**
   * An event that one channel could not deliver (after its retries), or dropped from a full
   * queue. `channel` names it without secrets, e.g. `webhook[0] https://hooks.example.com`.
   */
  readonly onFailure: (e: PgvipEvent, channel: string, err: Error) => void;
  readonly clock?: NotifierClock;
  /** Retries of webhooks and mails (default 5 attempts, 1 s doubling to at most 30 s, with jitter). */
  readonly retry?: Partial<RetryPolicy>;
  /** Events one channel may hold back while its receiver is down (default 100). */
  readonly queueCapacity?: number;
  /** How long close() lets queued deliveries finish before abandoning them (default 5000 ms). */
  readonly closeGraceMs?: number;
  /** Bound on connecting to the SMTP relay and on each SMTP command (default 10000 ms). */
  readonly smtpTimeoutMs?: number;
  /** Source of jitter (default Math.random). */
  readonly random?: () => number;
}

export interface ChannelNotifier extends Notifier {
  /** Labels of the configured channels, in config order. */
  readonly channels: readonly string[];
  /** Resolves once every channel's queue is empty (tests, and an orderly shutdown). */
  idle(): Promise<void>;
}

interface Channel {
  readonly label: string;
  readonly wants: EventFilter;
  accept(e: PgvipEvent): void;
  idle(): Promise<void>;
  close(graceMs: number): Promise<void>;
}

const userAgent = 'pgvip-witness';

export function createNotifier(config: NotificationsConfig, options: NotifierOptions): ChannelNotifier {
  const log = options.logger;
  const clock = options.clock ?? systemClock;
  const retry = retryPolicy(options.retry);
  const random = options.random ?? Math.random;
  const queueCapacity = options.queueCapacity ?? 100;
  const closeGraceMs = options.closeGraceMs ?? 5_000;

  const reportFailure = (e: PgvipEvent, channel: string, err: Error) => {
    log.warn({ channel, event: e.type, eventId: e.id, cluster: e.cluster, err: err.message }, `notification not delivered: ${channel}: ${err.message}`);
    try {
      options.onFailure(e, channel, err);
    } catch (hookErr) {
      log.error({ channel, err: hookErr instanceof Error ? hookErr.message : String(hookErr) }, 'onFailure threw; ignored');
    }
  };
  const abandoned = (channel: string) => (count: number, suppressed = 0) => {
    if (count > 0) log.warn({ channel, count }, `shutdown: ${count} notification(s) on ${channel} were not delivered`);
    if (suppressed > 0) log.warn({ channel, suppressed }, `shutdown: ${suppressed} rate-limited event(s) on ${channel} were never summarised by mail`);
  };
  const retryLogger = (channel: string) => (e: PgvipEvent, attempt: number, err: Error, retryInMs: number) => {
    log.info({ channel, attempt, retryInMs: Math.round(retryInMs), event: e.type, eventId: e.id, err: err.message }, `notification attempt ${attempt} failed on ${channel}; retrying`);
  };

  // One connection pool for every webhook of this notifier, destroyed by close().
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  const channels: Channel[] = [];

  config.webhooks.forEach((hook, index) => {
    const label = webhookLabel(hook.url, index);
    const queue = new DeliveryQueue<PgvipEvent>({
      capacity: queueCapacity,
      deliver: async (e, signal) => {
        await deliverWebhook(hook, e, {
          field: `notifications.webhooks[${index}]`,
          dispatcher,
          retry,
          clock,
          random,
          userAgent,
          onAttemptFailed: retryLogger(label),
        }, signal);
      },
      onFailed: (e, err) => reportFailure(e, label, err),
      onAbandoned: (items) => abandoned(label)(items.length),
    });
    channels.push({
      label,
      wants: eventFilter(hook.events),
      accept: (e) => queue.push(e),
      idle: () => queue.idle(),
      close: (grace) => queue.close(grace),
    });
  });

  if (config.command !== undefined) {
    const command = config.command;
    const label = `command ${command.path}`;
    const queue = new DeliveryQueue<PgvipEvent>({
      capacity: queueCapacity,
      deliver: (e, signal) => runCommand(command, e, signal),
      onFailed: (e, err) => reportFailure(e, label, err),
      onAbandoned: (items) => abandoned(label)(items.length),
    });
    channels.push({
      label,
      wants: eventFilter(command.events),
      accept: (e) => queue.push(e),
      idle: () => queue.idle(),
      close: (grace) => queue.close(grace),
    });
  }

  if (config.email !== undefined) {
    const email: EmailChannel = new EmailChannel(config.email, {
      clock,
      retry,
      random,
      queueCapacity,
      smtpTimeoutMs: options.smtpTimeoutMs ?? 10_000,
      onFailed: (e, err) => reportFailure(e, email.label, err),
      onAttemptFailed: retryLogger(`email ${config.email.smtpHost}:${config.email.smtpPort}`),
      onAbandoned: (count, suppressed) => abandoned(email.label)(count, suppressed),
    });
    channels.push({
      label: email.label,
      wants: eventFilter(config.email.events),
      accept: (e) => email.accept(e),
      idle: () => email.idle(),
      close: (grace) => email.close(grace),
    });
  }

  let closing: Promise<void> | undefined;
  return {
    channels: channels.map((c) => c.label),
    notify(e: PgvipEvent): void {
      try {
        if (closing !== undefined) {
          log.debug({ event: e.type, eventId: e.id }, 'notifier closed; event not sent');
          return;
        }
        if (e.type === notificationFailedType) return;
        for (const channel of channels) {
          if (channel.wants(e)) channel.accept(e);
        }
      } catch (err) {
        // notify() is called from the daemon's loop and must never throw into it.
        log.error({ event: e?.type, err: err instanceof Error ? err.message : String(err) }, 'notify failed unexpectedly');
      }
    },
    idle: async () => {
      await Promise.all(channels.map((c) => c.idle()));
    },
    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.all(channels.map((c) => c.close(closeGraceMs)));
        await dispatcher.destroy();
      })();
      return closing;
    },
  };
}

/**
 * Checks that every webhook secret file of a notifications block can be read, so a daemon can
 * refuse to start with a clear message instead of failing at its first event. Throws PgvipError.
 */
export async function checkNotificationSecrets(config: NotificationsConfig, field = 'notifications'): Promise<void> {
  for (const [index, hook] of config.webhooks.entries()) {
    if (hook.secretFile !== undefined) await readSecretFile(hook.secretFile, `${field}.webhooks[${index}].secretFile`);
  }
}
