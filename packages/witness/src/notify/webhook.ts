// Webhooks: each event is POSTed as JSON to every configured URL. Signed with HMAC-SHA256 when a
// secret file is configured, retried with backoff on network errors, timeouts, 408/425/429 and
// 5xx, and never retried on other answers (a 4xx means the request itself is wrong: retrying the
// same bytes cannot help).
import { createHmac } from 'node:crypto';
import { readSecretFile } from '@pgvip/shared';
import { cleanText } from '@pgvip/shared/text';
import { request, type Dispatcher } from 'undici';
import type { PgvipEvent } from '../events.js';
import { sleep, type NotifierClock } from './clock.js';
import { backoffDelayMs, type RetryPolicy } from './retry.js';

export interface WebhookTarget {
  readonly url: string;
  readonly secretFile?: string | undefined;
  readonly timeoutMs: number;
}

export interface WebhookDeps {
  /** Config path of this webhook, e.g. `notifications.webhooks[0]`, for error messages. */
  readonly field: string;
  readonly dispatcher: Dispatcher;
  readonly retry: RetryPolicy;
  readonly clock: NotifierClock;
  readonly random: () => number;
  readonly userAgent: string;
  /** Called before each retry: the witness logs every failed attempt, not only the last. */
  readonly onAttemptFailed: (e: PgvipEvent, attempt: number, err: Error, retryInMs: number) => void;
}

export const signatureHeader = 'x-pgvip-signature';
export const eventHeader = 'x-pgvip-event';
export const deliveryHeader = 'x-pgvip-delivery';

/** The signature header's value: `sha256=` and the hex HMAC-SHA256 of the exact body bytes. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/**
 * Where a webhook sends, safe to write into logs and history: scheme, host and port only. The path
 * and query of many webhook URLs (Slack, Teams, ...) ARE the credential.
 */
export function webhookLabel(url: string, index: number): string {
  let origin = '(invalid URL)';
  try {
    origin = new URL(url).origin;
  } catch {
    // The config loader validated it; keep the label total anyway.
  }
  return `webhook[${index}] ${origin}`;
}

/** A failure that retrying cannot fix (a 4xx answer, an unreadable secret file). */
class PermanentFailure extends Error {}

interface Answer {
  readonly status: number;
  readonly snippet: string;
  readonly retryAfterMs: number | undefined;
}

/** Sends one event, retrying as the policy says; rejects with the reason of the last attempt. */
export async function deliverWebhook(
  target: WebhookTarget,
  e: PgvipEvent,
  deps: WebhookDeps,
  signal: AbortSignal,
): Promise<void> {
  const body = JSON.stringify(e);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': deps.userAgent,
    [eventHeader]: e.type,
    // Stable across retries: a receiver that saw an attempt whose answer got lost can de-duplicate.
    [deliveryHeader]: `${e.cluster}-${e.id}`,
  };
  if (target.secretFile !== undefined) {
    // Read at every delivery, so that rotating the secret needs no restart of the witness.
    let secret: string;
    try {
      secret = await readSecretFile(target.secretFile, `${deps.field}.secretFile`);
    } catch (err) {
      throw new PermanentFailure(`not sent: ${err instanceof Error ? err.message : String(err)}`);
    }
    headers[signatureHeader] = signBody(body, secret);
  }
  let lastError = 'no attempt made';
  for (let attempt = 1; attempt <= deps.retry.attempts; attempt++) {
    let retryAfterMs: number | undefined;
    try {
      const answer = await postOnce(target, body, headers, deps.dispatcher, signal);
      if (answer.status >= 200 && answer.status < 300) return;
      const what = `answered HTTP ${answer.status}${answer.snippet === '' ? '' : `: ${answer.snippet}`}`;
      if (!isRetryableStatus(answer.status)) throw new PermanentFailure(`${what} (not retried: only timeouts, network errors, 408, 425, 429 and 5xx are)`);
      lastError = what;
      retryAfterMs = answer.retryAfterMs;
    } catch (err) {
      if (err instanceof PermanentFailure || signal.aborted) throw err;
      lastError = describeRequestError(err, target.timeoutMs);
    }
    if (attempt === deps.retry.attempts) break;
    const backoffMs = backoffDelayMs(deps.retry, attempt, deps.random);
    const delayMs = Math.min(deps.retry.maxDelayMs, Math.max(retryAfterMs ?? 0, backoffMs));
    deps.onAttemptFailed(e, attempt, new Error(lastError), delayMs);
    await sleep(deps.clock, delayMs, signal);
  }
  throw new Error(`gave up after ${deps.retry.attempts} attempt${deps.retry.attempts === 1 ? '' : 's'}; last: ${lastError}`);
}

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function postOnce(
  target: WebhookTarget,
  body: string,
  headers: Record<string, string>,
  dispatcher: Dispatcher,
  signal: AbortSignal,
): Promise<Answer> {
  // One deadline for the whole attempt (connect, headers and body), on top of the shutdown signal.
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(target.timeoutMs)]);
  const res = await request(target.url, {
    method: 'POST',
    body,
    headers,
    dispatcher,
    signal: deadline,
    headersTimeout: target.timeoutMs,
    bodyTimeout: target.timeoutMs,
  });
  const snippet = await readSnippet(res.body, 200);
  const retryAfter = res.headers['retry-after'];
  const seconds = typeof retryAfter === 'string' && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  return { status: res.statusCode, snippet, retryAfterMs: seconds === undefined ? undefined : seconds * 1000 };
}

/** At most this much of an answer's body is read (for its snippet); the rest is never read. */
export const webhookAnswerReadBytes = 4 * 1024;

/** The start of a response body, for the error message; the rest is discarded unread. */
async function readSnippet(body: Dispatcher.ResponseData['body'], maxChars: number): Promise<string> {
  // Counted in bytes and cut inside a chunk: the receiver decides how large its answer and its
  // chunks are, the witness decides how much of it it holds.
  const parts: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of body) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      const part = b.subarray(0, webhookAnswerReadBytes - bytes);
      parts.push(part);
      bytes += part.length;
      if (bytes >= webhookAnswerReadBytes) break;
    }
  } catch {
    // A body cut short still leaves the status code, which is what decides.
  } finally {
    body.destroy();
  }
  const text = Buffer.concat(parts, bytes).toString('utf8');
  // Whatever answers may put terminal escape sequences in its body: the snippet ends up in the
  // history, which operators read on a terminal.
  return cleanText(text, { maxChars }).replace(/\s+/g, ' ').trim();
}

function describeRequestError(err: unknown, timeoutMs: number): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  if (err.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `no answer within ${timeoutMs} ms (timeoutMs)`;
  }
  const cause = err.cause instanceof Error ? err.cause : undefined;
  const causeCode = (cause as { code?: unknown } | undefined)?.code;
  const reason = typeof code === 'string' && code.startsWith('E') ? code : typeof causeCode === 'string' ? causeCode : undefined;
  return reason !== undefined ? `request failed (${reason}): ${err.message}` : `request failed: ${err.message}`;
}
