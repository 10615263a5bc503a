// Goal: webhooks deliver each event as signed JSON, retry what can succeed later, give up loudly,
// and never let a dead, slow or hanging receiver delay the daemon or grow its memory.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import type { NotificationsConfig } from '@pgvip/shared';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createNotifier, type NotifierOptions } from '../src/notify/index.js';
import { event, failureCollector, memoryLogger, tempDir, waitFor, writeSecret } from './notify-helpers.js';

interface Received {
  readonly body: string;
  readonly headers: FastifyRequest['headers'];
}

type Handler = (req: FastifyRequest, reply: FastifyReply, n: number) => unknown;

/** A webhook receiver on loopback; `handler` decides each answer (n counts requests from 1). */
async function receiver(t: TestContext, handler: Handler = () => ({ ok: true })) {
  // forceCloseConnections: a test that leaves a request hanging must not hold close() hostage.
  const app = Fastify({ forceCloseConnections: true });
  const received: Received[] = [];
  // The signature covers the exact bytes sent: keep the body as text, unparsed.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/hook/:secretPath', async (req, reply) => {
    received.push({ body: req.body as string, headers: req.headers });
    return handler(req, reply, received.length);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const { port } = app.server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook/s3cr3t-path`, received };
}

function webhooks(...hooks: Array<Partial<NotificationsConfig['webhooks'][number]> & { url: string }>): NotificationsConfig {
  const events = ['*'] as NotificationsConfig['webhooks'][number]['events'];
  return { webhooks: hooks.map((h) => ({ events, timeoutMs: 2_000, ...h })), nodeHoldDownMs: 60_000 };
}

function notifierFor(t: TestContext, config: NotificationsConfig, extra: Partial<NotifierOptions> = {}) {
  const log = memoryLogger();
  const failures = failureCollector();
  const notifier = createNotifier(config, {
    logger: log,
    onFailure: failures.onFailure,
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 40 },
    closeGraceMs: 500,
    ...extra,
  });
  t.after(() => notifier.close());
  return { notifier, log, failures };
}

describe('webhook notifications', { timeout: 30_000 }, () => {
  it('POSTs the event as JSON with its type, a delivery id and an HMAC-SHA256 signature of the body', async (t) => {
    const hook = await receiver(t);
    const secret = 'correct horse battery staple';
    const secretFile = writeSecret(tempDir(t, 'pgvip-hook-'), 'webhook.secret', `${secret}\n`);
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url, secretFile }));
    const e = event({ detail: 'détail with "quotes" and ünïcode' });
    notifier.notify(e);
    await notifier.idle();

    assert.equal(hook.received.length, 1);
    const [got] = hook.received;
    assert.deepEqual(JSON.parse(got!.body), e);
    assert.equal(got!.headers['content-type'], 'application/json');
    assert.equal(got!.headers['x-pgvip-event'], 'failover');
    assert.equal(got!.headers['x-pgvip-delivery'], `main-${e.id}`);
    // The receiver's side: recompute the HMAC over the raw body with the shared secret (no newline).
    const expected = `sha256=${createHmac('sha256', secret).update(got!.body, 'utf8').digest('hex')}`;
    assert.equal(got!.headers['x-pgvip-signature'], expected);
    assert.deepEqual(failures.failures, []);
  });

  it('sends no signature header when no secret file is configured', async (t) => {
    const hook = await receiver(t);
    const { notifier } = notifierFor(t, webhooks({ url: hook.url }));
    notifier.notify(event());
    await notifier.idle();
    assert.equal(hook.received.length, 1);
    assert.equal(hook.received[0]!.headers['x-pgvip-signature'], undefined);
  });

  it('retries after 500 answers with backoff and delivers once the receiver recovers', async (t) => {
    const hook = await receiver(t, (_req, reply, n) => (n <= 2 ? reply.code(500).send({ error: 'warming up' }) : { ok: true }));
    const { notifier, failures, log } = notifierFor(t, webhooks({ url: hook.url }));
    const e = event();
    notifier.notify(e);
    await notifier.idle();
    assert.equal(hook.received.length, 3);
    // The same delivery id on every attempt, so the receiver can de-duplicate.
    assert.deepEqual(new Set(hook.received.map((r) => r.headers['x-pgvip-delivery'])), new Set([`main-${e.id}`]));
    assert.deepEqual(failures.failures, []);
    const retries = log.lines.filter((l) => l.msg?.includes('retrying'));
    assert.equal(retries.length, 2);
    assert.match(JSON.stringify(retries[0]!.obj), /answered HTTP 500/);
  });

  it('gives up after the configured attempts and reports the event, the channel (without the secret URL path) and why', async (t) => {
    const hook = await receiver(t, (_req, reply) => reply.code(503).send('down for maintenance'));
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url }));
    const e = event({ type: 'fenced', node: 'db-a' });
    notifier.notify(e);
    await failures.next(1);
    assert.equal(hook.received.length, 3);
    const [failure] = failures.failures;
    assert.deepEqual(failure!.event, e);
    assert.equal(failure!.channel, `webhook[0] ${new URL(hook.url).origin}`);
    assert.doesNotMatch(failure!.channel, /s3cr3t/);
    assert.match(failure!.message, /^gave up after 3 attempts; last: answered HTTP 503: down for maintenance$/);
  });

  it('does not retry a 4xx answer other than 408/425/429', async (t) => {
    const hook = await receiver(t, (_req, reply) => reply.code(404).send('no such hook'));
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url }));
    notifier.notify(event());
    await failures.next(1);
    assert.equal(hook.received.length, 1);
    assert.match(failures.failures[0]!.message, /answered HTTP 404: no such hook \(not retried/);
  });

  it('retries a refused connection and names the network error when it gives up', async (t) => {
    // A port that was just free: nothing listens there.
    const hook = await receiver(t);
    const url = hook.url;
    const app = Fastify();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const deadUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/hook`;
    await app.close();
    const { notifier, failures } = notifierFor(t, webhooks({ url: deadUrl }, { url }));
    notifier.notify(event());
    await failures.next(1);
    await notifier.idle();
    assert.match(failures.failures[0]!.message, /gave up after 3 attempts; last: request failed \(ECONNREFUSED\)/);
    assert.equal(failures.failures[0]!.channel, `webhook[0] ${new URL(deadUrl).origin}`);
    // The healthy second webhook got its event regardless.
    assert.equal(hook.received.length, 1);
  });

  it('returns from notify() at once while the receiver hangs, and times each attempt out', async (t) => {
    const held: FastifyReply[] = [];
    const hook = await receiver(t, (_req, reply) => {
      held.push(reply);
      return reply; // never answered: the receiver hangs
    });
    t.after(() => held.forEach((r) => r.raw.destroy()));
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url, timeoutMs: 200 }), {
      retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
    });
    const durations: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      notifier.notify(event({ type: i % 2 ? 'fenced' : 'failover' }));
      durations.push(performance.now() - started);
      if (i === 0) await waitFor(() => hook.received.length === 1, 2_000, 'the first request to hang');
    }
    assert.ok(Math.max(...durations) < 5, `notify() took up to ${Math.max(...durations).toFixed(2)} ms`);
    await failures.next(1, 3_000);
    assert.match(failures.failures[0]!.message, /gave up after 2 attempts; last: no answer within 200 ms \(timeoutMs\)/);
  });

  it('holds at most queueCapacity events for a dead receiver and reports each one it drops', async (t) => {
    const held: FastifyReply[] = [];
    const hook = await receiver(t, (_req, reply) => {
      held.push(reply);
      return reply;
    });
    t.after(() => held.forEach((r) => r.raw.destroy()));
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url, timeoutMs: 5_000 }), { queueCapacity: 3 });
    const events = Array.from({ length: 10 }, (_, i) => event({ detail: `event ${i}` }));
    notifier.notify(events[0]!);
    await waitFor(() => hook.received.length === 1, 2_000, 'the first delivery to be in flight');
    for (const e of events.slice(1)) notifier.notify(e);
    // One in flight, three waiting: the six oldest waiting ones were pushed out.
    await failures.next(6);
    assert.deepEqual(failures.failures.map((f) => f.event.detail), ['event 1', 'event 2', 'event 3', 'event 4', 'event 5', 'event 6']);
    assert.match(failures.failures[0]!.message, /^dropped: 3 newer events were waiting/);
  });

  it('reports an unreadable or exposed secret file without sending anything', async (t) => {
    const hook = await receiver(t);
    const dir = tempDir(t, 'pgvip-hook-');
    const exposed = writeSecret(dir, 'exposed.secret', 'secret', 0o644);
    const { notifier, failures } = notifierFor(t, webhooks({ url: hook.url, secretFile: `${dir}/missing.secret` }, { url: hook.url, secretFile: exposed }));
    notifier.notify(event());
    await failures.next(2);
    await notifier.idle();
    assert.equal(hook.received.length, 0);
    const messages = failures.failures.map((f) => f.message).sort();
    assert.match(messages.find((m) => m.includes('missing'))!, /notifications\.webhooks\[0\]\.secretFile: .*missing\.secret does not exist/);
    assert.match(messages.find((m) => m.includes('exposed'))!, /notifications\.webhooks\[1\]\.secretFile: .*chmod 600/);
  });

  it('sends each webhook only the events its filter lists, and never notification-failed events', async (t) => {
    const all = await receiver(t);
    const some = await receiver(t);
    const { notifier } = notifierFor(t, webhooks({ url: all.url }, { url: some.url, events: ['failover', 'vip-error'] }));
    for (const type of ['failover', 'fenced', 'vip-error', 'maintenance', 'notification-failed']) notifier.notify(event({ type }));
    await notifier.idle();
    assert.deepEqual(all.received.map((r) => r.headers['x-pgvip-event']), ['failover', 'fenced', 'vip-error', 'maintenance']);
    assert.deepEqual(some.received.map((r) => r.headers['x-pgvip-event']), ['failover', 'vip-error']);
  });

  it('close() gives up on a hanging delivery after its grace period and ignores later events', async (t) => {
    const held: FastifyReply[] = [];
    const hook = await receiver(t, (_req, reply) => {
      held.push(reply);
      return reply;
    });
    t.after(() => held.forEach((r) => r.raw.destroy()));
    const { notifier, failures, log } = notifierFor(t, webhooks({ url: hook.url, timeoutMs: 30_000 }), {
      closeGraceMs: 100,
    });
    notifier.notify(event());
    notifier.notify(event());
    await waitFor(() => hook.received.length === 1, 2_000, 'the delivery to be in flight');
    const started = performance.now();
    await notifier.close();
    assert.ok(performance.now() - started < 2_000, 'close() returned promptly');
    notifier.notify(event());
    assert.deepEqual(failures.failures, [], 'shutdown losses are logged, not recorded as failures');
    assert.ok(log.lines.some((l) => l.level === 'warn' && /2 notification\(s\) on webhook\[0\] .* were not delivered/.test(l.msg ?? '')));
  });
});

describe('webhook answers', () => {
  it('reads at most 4 KiB of an answer, even an endless one, and keeps a snippet of it', async (t) => {
    let sent = 0;
    const chunk = Buffer.alloc(256 * 1024, 0x78);
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' });
      const pump = () => {
        while (!res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
    const { notifier, failures } = notifierFor(t, webhooks({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook` }));
    const started = performance.now();
    notifier.notify(event());
    await failures.next(1);
    assert.ok(performance.now() - started < 2_000, 'three attempts, none waiting for the endless body');
    assert.match(failures.failures[0]!.message, /^gave up after 3 attempts; last: answered HTTP 500: x{100,200}…?$/);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(sent < 3 * 16 * 1024 ** 2, `the receiver got ${sent} bytes out`);
  });
});
