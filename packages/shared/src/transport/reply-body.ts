// Reading a reply body without trusting its size. The peer client must read a reply whole before it
// can check the reply's MAC, and the CLI before it can parse it; whatever answers at that address
// decides how much that is. Buffering it all let anything at a peer's address make the witness hold
// 742 MB (a 1 GB reply). pgvip's own replies are a few KiB, so a reply past the cap is refused: the
// content-length first, then the bytes as they arrive, and the connection is closed at once.
import { PgvipError } from '../errors.js';

/** The largest reply body pgvip reads from a peer or the operator API (its own are under 16 KiB). */
export const replyLimitBytes = 64 * 1024;

/** A response body as undici gives it: bytes in chunks, and a way to stop reading. */
export interface ReplyBody extends AsyncIterable<Uint8Array | string> {
  destroy(err?: Error): unknown;
}

/**
 * The body as text, or PGVIP_REPLY_TOO_LARGE once it is known to exceed `limitBytes`. `what` names the
 * reply in the message, e.g. `db-b GET /v1/status`.
 */
export async function readReplyBody(
  body: ReplyBody,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  what: string,
  limitBytes: number = replyLimitBytes,
): Promise<string> {
  const tooLarge = (size: string) => {
    const e = new PgvipError('PGVIP_REPLY_TOO_LARGE', `${what}: the reply is ${size}; pgvip reads at most ${limitBytes} bytes (is a pgvip daemon listening at that address?)`);
    // Without the error: undici 8 emits a destroy error on the body stream, which nobody listens to
    // before iterating it, so it became an uncaught exception. The caller gets `e` thrown anyway.
    body.destroy();
    return e;
  };
  const declared = headers['content-length'];
  if (typeof declared === 'string' && /^\d+$/.test(declared.trim()) && Number(declared) > limitBytes) throw tooLarge(`${declared} bytes (content-length)`);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    bytes += b.length;
    if (bytes > limitBytes) throw tooLarge(`more than ${limitBytes} bytes`);
    chunks.push(b);
  }
  // As undici's text() decodes: UTF-8, a leading byte-order mark dropped.
  return new TextDecoder().decode(Buffer.concat(chunks, bytes));
}

/**
 * readReplyBody for a fetch() Response (IMDS clients use fetch): the same cap, counted the same way.
 * An absent body is an empty reply.
 */
export async function readFetchReplyBody(
  res: Response,
  what: string,
  limitBytes: number = replyLimitBytes,
): Promise<string> {
  const stream = res.body;
  if (stream === null) return '';
  const body: ReplyBody = {
    [Symbol.asyncIterator]: () => stream[Symbol.asyncIterator](),
    destroy: () => void stream.cancel().catch(() => undefined),
  };
  return readReplyBody(body, { 'content-length': res.headers.get('content-length') ?? undefined }, what, limitBytes);
}
