// E-mail: one plain-text mail per event through an SMTP relay, at most `ratePerHour` mails in any
// sliding hour. Events past the limit are not lost: they are counted, and when the window reopens
// the witness sends one summary mail ("N further events suppressed") listing them. A flapping
// cluster therefore costs an inbox ratePerHour mails an hour, and nobody misses that it flapped.
import { notificationEvents } from '@pgvip/shared';
import { subscriptionName } from './event-names.js';
import type { Transporter } from 'nodemailer';
import type { PgvipEvent } from '../events.js';
import { sleep, type NotifierClock } from './clock.js';
import { DeliveryQueue } from './queue.js';
import { backoffDelayMs, type RetryPolicy } from './retry.js';

export interface EmailTarget {
  readonly smtpHost: string;
  readonly smtpPort: number;
  readonly from: string;
  readonly to: readonly string[];
  readonly ratePerHour: number;
  readonly startTls?: boolean | undefined;
}

export interface Mail {
  readonly subject: string;
  readonly text: string;
  /** The event the mail reports (for a summary: the latest suppressed one), for failure reports. */
  readonly about: PgvipEvent;
}

export interface EmailChannelDeps {
  readonly clock: NotifierClock;
  readonly retry: RetryPolicy;
  readonly random: () => number;
  readonly queueCapacity: number;
  /** Bound on connecting, the greeting and each SMTP command. */
  readonly smtpTimeoutMs: number;
  readonly onFailed: (e: PgvipEvent, err: Error) => void;
  readonly onAttemptFailed: (e: PgvipEvent, attempt: number, err: Error, retryInMs: number) => void;
  readonly onAbandoned: (count: number, suppressed: number) => void;
}

const windowMs = 3_600_000;
/** Events listed one by one in a summary; the rest are only counted. */
const summaryLinesMax = 50;

const eventMeanings: Readonly<Record<string, string>> = notificationEvents;

function eventLine(e: PgvipEvent): string {
  return `${e.at}  ${e.cluster}  ${e.type}${e.node === null ? '' : ` ${e.node}`}  term ${e.term}: ${e.detail}`;
}

export function eventSubject(e: PgvipEvent): string {
  return `[pgvip] ${e.cluster}: ${e.type}${e.node === null ? '' : ` on ${e.node}`} (term ${e.term})`;
}

const signature = '-- \nSent by the pgvip witness. `pgvip status` shows the clusters now, `pgvip history` what happened.\n';

class Suppressed {
  count = 0;
  readonly listed: PgvipEvent[] = [];
  latest: PgvipEvent | undefined;

  add(e: PgvipEvent): void {
    this.count++;
    this.latest = e;
    if (this.listed.length < summaryLinesMax) this.listed.push(e);
  }

  /** The summary section, and resets the counter. */
  take(ratePerHour: number): string {
    const unlisted = this.count - this.listed.length;
    const text =
      `${this.count} further event${this.count === 1 ? ' was' : 's were'} suppressed by the mail rate limit (${ratePerHour} per hour):\n` +
      this.listed.map((e) => `  ${eventLine(e)}\n`).join('') +
      (unlisted > 0 ? `  ... and ${unlisted} more (pgvip history lists them all)\n` : '');
    this.count = 0;
    this.listed.length = 0;
    this.latest = undefined;
    return text;
  }
}

export class EmailChannel {
  readonly label: string;
  readonly #target: EmailTarget;
  readonly #deps: EmailChannelDeps;
  /**
   * Made at the first mail: nodemailer is loaded only then, so a witness without an e-mail channel
   * (or one that has not needed it yet) does not carry its ~15 MB of code.
   */
  #transport: Promise<Transporter> | undefined;
  readonly #queue: DeliveryQueue<Mail>;
  /** Monotonic times of the mails sent (or being sent) in the last hour, oldest first. */
  readonly #sentAtMs: number[] = [];
  readonly #suppressed = new Suppressed();
  #cancelReopen: (() => void) | undefined;
  #closed = false;

  constructor(target: EmailTarget, deps: EmailChannelDeps) {
    this.#target = target;
    this.#deps = deps;
    this.label = `email ${target.smtpHost}:${target.smtpPort}`;
    this.#queue = new DeliveryQueue<Mail>({
      capacity: deps.queueCapacity,
      deliver: (mail, signal) => this.#send(mail, signal),
      onFailed: (mail, err) => deps.onFailed(mail.about, err),
      onAbandoned: (mails) => deps.onAbandoned(mails.length, 0),
    });
  }

  accept(e: PgvipEvent): void {
    if (this.#closed) return;
    if (!this.#takeSlot()) {
      this.#suppressed.add(e);
      this.#scheduleReopen();
      return;
    }
    // A slot while events wait to be summarised (the reopen timer has not fired yet): one mail
    // carries both.
    const summary = this.#suppressed.count > 0 ? `\n${this.#suppressed.take(this.#target.ratePerHour)}` : '';
    const name = subscriptionName(e.type);
    const meaning = name === undefined ? undefined : eventMeanings[name];
    const text =
      `${e.type}${e.node === null ? '' : ` on ${e.node}`} in cluster ${e.cluster} (term ${e.term})\n\n` +
      `${e.detail}\n\n` +
      (meaning === undefined ? '' : `What this event means: ${meaning}${name === e.type ? '' : ` (subscribed to as "${name}")`}.\n`) +
      `When: ${e.at} (witness clock)\nEvent id: ${e.id}\n` +
      summary +
      `\n${signature}`;
    this.#queue.push({ subject: eventSubject(e), text, about: e });
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#cancelReopen?.();
    this.#cancelReopen = undefined;
    const unsent = this.#suppressed.count;
    await this.#queue.close(graceMs);
    if (unsent > 0) this.#deps.onAbandoned(0, unsent);
    // Unset when no mail was ever sent; a transport that failed to load has nothing to close.
    await this.#transport?.then((t) => t.close(), () => undefined);
  }

  #transporter(): Promise<Transporter> {
    const target = this.#target;
    const timeoutMs = this.#deps.smtpTimeoutMs;
    this.#transport ??= import('nodemailer').then((m) =>
      m.default.createTransport({
        host: target.smtpHost,
        port: target.smtpPort,
        // Port 465 speaks TLS from the first byte (SMTPS); every other port starts in plain text.
        secure: target.smtpPort === 465,
        // startTls true: refuse a relay without STARTTLS; false: never upgrade; unset: when offered.
        requireTLS: target.startTls === true,
        ignoreTLS: target.startTls === false,
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      }),
    );
    return this.#transport;
  }

  /** Counts a mail against the sliding hour, if the limit allows one now. */
  #takeSlot(): boolean {
    const now = this.#deps.clock.now();
    while (this.#sentAtMs.length > 0 && this.#sentAtMs[0]! <= now - windowMs) this.#sentAtMs.shift();
    if (this.#sentAtMs.length >= this.#target.ratePerHour) return false;
    this.#sentAtMs.push(now);
    return true;
  }

  #scheduleReopen(): void {
    if (this.#cancelReopen !== undefined || this.#sentAtMs.length === 0) return;
    const reopensInMs = this.#sentAtMs[0]! + windowMs - this.#deps.clock.now();
    this.#cancelReopen = this.#deps.clock.setTimer(() => {
      this.#cancelReopen = undefined;
      this.#reopen();
    }, reopensInMs);
  }

  /** The window has room again: send the summary of what was held back. */
  #reopen(): void {
    if (this.#closed || this.#suppressed.count === 0) return;
    if (!this.#takeSlot()) {
      this.#scheduleReopen();
      return;
    }
    const about = this.#suppressed.latest!;
    const count = this.#suppressed.count;
    const clusters = [...new Set(this.#suppressed.listed.map((e) => e.cluster).concat(about.cluster))].join(', ');
    const text = this.#suppressed.take(this.#target.ratePerHour);
    this.#queue.push({ subject: `[pgvip] ${clusters}: ${count} further event${count === 1 ? '' : 's'} suppressed`, text: `${text}\n${signature}`, about });
  }

  async #send(mail: Mail, signal: AbortSignal): Promise<void> {
    let lastError = '';
    for (let attempt = 1; attempt <= this.#deps.retry.attempts; attempt++) {
      try {
        const transport = await this.#transporter();
        await transport.sendMail({
          from: this.#target.from,
          to: [...this.#target.to],
          subject: mail.subject,
          text: mail.text,
        });
        return;
      } catch (err) {
        if (signal.aborted) throw err;
        lastError = describeSmtpError(err);
        // A relay that rejects sender or recipients (5xx) will do so again: do not retry that.
        const responseCode = (err as { responseCode?: unknown }).responseCode;
        if (typeof responseCode === 'number' && responseCode >= 500) throw new Error(`the relay refused the mail: ${lastError}`);
      }
      if (attempt === this.#deps.retry.attempts) break;
      const delayMs = backoffDelayMs(this.#deps.retry, attempt, this.#deps.random);
      this.#deps.onAttemptFailed(mail.about, attempt, new Error(lastError), delayMs);
      await sleep(this.#deps.clock, delayMs, signal);
    }
    throw new Error(`gave up after ${this.#deps.retry.attempts} attempt${this.#deps.retry.attempts === 1 ? '' : 's'}; last: ${lastError}`);
  }
}

function describeSmtpError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}
