// Goal: e-mail notifications reach an SMTP relay with a subject that says what happened, at most
// ratePerHour mails in any hour, and the events held back are summarised in one mail ("N further
// events suppressed") as soon as the window reopens — so a flapping cluster cannot flood an inbox
// and nobody misses that it flapped.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { notificationEvents, type NotificationsConfig } from '@pgvip/shared';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createNotifier, type NotifierOptions } from '../src/notify/index.js';
import { event, failureCollector, manualClock, memoryLogger, waitFor } from './notify-helpers.js';

type EmailConfig = NonNullable<NotificationsConfig['email']>;

interface ReceivedMail {
  readonly from: string;
  readonly to: string[];
  readonly subject: string;
  readonly body: string;
}

/** Headers and a decoded text body of a single-part message as nodemailer writes it. */
function parseMessage(raw: string): { subject: string; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  let body = raw.slice(split + 4);
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1] ?? '';
  if (/quoted-printable/i.test(header('Content-Transfer-Encoding'))) {
    body = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  return { subject: header('Subject'), body: body.replace(/\r\n/g, '\n') };
}

/** An SMTP relay on loopback without authentication; `options` may switch STARTTLS on or off. */
async function relay(t: TestContext, options: SMTPServerOptions = {}) {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (raw += chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        mails.push({ from, to: session.envelope.rcptTo.map((r) => r.address), ...parseMessage(raw) });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.server.address() as { port: number };
  return { port, mails };
}

function emailConfig(port: number, overrides: Partial<EmailConfig> = {}): NotificationsConfig {
  return {
    webhooks: [],
    nodeHoldDownMs: 60_000,
    email: { smtpHost: '127.0.0.1', smtpPort: port, from: 'pgvip@example.com', to: ['dba@example.com', 'oncall@example.com'], ratePerHour: 6, events: ['*'], startTls: false, ...overrides },
  };
}

function notifierFor(t: TestContext, config: NotificationsConfig, extra: Partial<NotifierOptions> = {}) {
  const failures = failureCollector();
  const notifier = createNotifier(config, {
    logger: memoryLogger(),
    onFailure: failures.onFailure,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
    smtpTimeoutMs: 2_000,
    closeGraceMs: 2_000,
    ...extra,
  });
  t.after(() => notifier.close());
  return { notifier, failures };
}

describe('e-mail notifications', { timeout: 30_000 }, () => {
  it('mails each event with a "[pgvip] <cluster>: <type> on <node>" subject and the detail in the body', async (t) => {
    const smtp = await relay(t);
    const { notifier, failures } = notifierFor(t, emailConfig(smtp.port));
    const e = event({ type: 'node-unreachable', node: 'db-a', term: 4, detail: 'db-a failed 3 consecutive checks: connect ECONNREFUSED 10.0.1.11:8008' });
    notifier.notify(e);
    await notifier.idle();
    assert.deepEqual(failures.failures, []);
    assert.equal(smtp.mails.length, 1);
    const [mail] = smtp.mails;
    assert.equal(mail!.from, 'pgvip@example.com');
    assert.deepEqual(mail!.to, ['dba@example.com', 'oncall@example.com']);
    assert.equal(mail!.subject, '[pgvip] main: node-unreachable on db-a (term 4)');
    assert.match(mail!.body, /db-a failed 3 consecutive checks: connect ECONNREFUSED 10\.0\.1\.11:8008/);
    assert.ok(mail!.body.includes(`What this event means: ${notificationEvents['node-unreachable']}.`), mail!.body);
    assert.match(mail!.body, new RegExp(`Event id: ${e.id}`));
  });

  it('sends at most ratePerHour mails an hour and summarises the rest in one mail when the window reopens', async (t) => {
    const smtp = await relay(t);
    const clock = manualClock();
    const { notifier, failures } = notifierFor(t, emailConfig(smtp.port, { ratePerHour: 2 }), { clock });
    // A flapping node: 7 events within a minute.
    const types = ['node-unreachable', 'node-recovered', 'node-unreachable', 'node-recovered', 'node-unreachable', 'node-recovered', 'node-unreachable'];
    types.forEach((type, i) => {
      notifier.notify(event({ type, node: 'db-a', detail: `flap ${i}` }));
      clock.advance(10_000);
    });
    await notifier.idle();
    assert.deepEqual(smtp.mails.map((m) => m.subject), ['[pgvip] main: node-unreachable on db-a (term 8)', '[pgvip] main: node-recovered on db-a (term 8)']);

    // Not yet: the first mail went out 70 s ago, so its slot frees 1 h after it was sent.
    clock.advance(3_600_000 - 80_000);
    await notifier.idle();
    assert.equal(smtp.mails.length, 2);
    clock.advance(10_000);
    await waitFor(() => smtp.mails.length === 3, 5_000, 'the summary mail');
    const summary = smtp.mails[2]!;
    assert.equal(summary.subject, '[pgvip] main: 5 further events suppressed');
    assert.match(summary.body, /5 further events were suppressed by the mail rate limit \(2 per hour\):/);
    for (let i = 2; i < 7; i++) assert.match(summary.body, new RegExp(`${types[i]} db-a {2}term 8: flap ${i}\\n`));

    // The window keeps sliding: the second slot frees 10 s later, and the next event gets it.
    clock.advance(10_000);
    notifier.notify(event({ type: 'failover', detail: 'db-b promoted' }));
    await notifier.idle();
    assert.equal(smtp.mails.length, 4);
    assert.equal(smtp.mails[3]!.subject, '[pgvip] main: failover on db-b (term 8)');
    // Nothing else is pending: a later hour sends no empty summary.
    clock.advance(2 * 3_600_000);
    await notifier.idle();
    assert.equal(smtp.mails.length, 4);
    assert.deepEqual(failures.failures, []);
  });

  it('mails only the events its filter lists (e.g. every failed check, as the old shell loop did)', async (t) => {
    const smtp = await relay(t);
    const { notifier } = notifierFor(t, emailConfig(smtp.port, { events: ['node-unreachable', 'agent-down'] }));
    for (const type of ['failover', 'node-unreachable', 'vip-moved', 'agent-down', 'notification-failed']) notifier.notify(event({ type }));
    await notifier.idle();
    assert.deepEqual(smtp.mails.map((m) => m.subject.split(' ')[2]), ['node-unreachable', 'agent-down']);
  });

  it('refuses to send in clear text when startTls is true and the relay offers no STARTTLS', async (t) => {
    const smtp = await relay(t);
    const { notifier, failures } = notifierFor(t, emailConfig(smtp.port, { startTls: true }));
    notifier.notify(event());
    await failures.next(1);
    assert.equal(smtp.mails.length, 0);
    assert.equal(failures.failures[0]!.channel, `email 127.0.0.1:${smtp.port}`);
    assert.match(failures.failures[0]!.message, /STARTTLS/i);
  });

  it('retries an unreachable relay, then reports the event it could not mail', async (t) => {
    // A port that was just free: nothing listens there.
    const dead = new SMTPServer({ logger: false });
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', () => resolve()));
    const deadPort = (dead.server.address() as { port: number }).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const { notifier, failures } = notifierFor(t, emailConfig(deadPort));
    const e = event({ type: 'vip-error' });
    notifier.notify(e);
    await failures.next(1);
    assert.deepEqual(failures.failures[0]!.event, e);
    assert.match(failures.failures[0]!.message, /^gave up after 2 attempts; last: ESOCKET: .*ECONNREFUSED/);
  });

  it('does not retry a mail the relay rejects permanently (5xx)', async (t) => {
    let attempts = 0;
    const smtp = await relay(t, {
      onRcptTo(_address, _session, callback) {
        attempts++;
        const err = Object.assign(new Error('mailbox unavailable'), { responseCode: 550 });
        callback(err);
      },
    });
    const { notifier, failures } = notifierFor(t, emailConfig(smtp.port, { to: ['nobody@example.com'] }));
    notifier.notify(event());
    await failures.next(1);
    assert.equal(attempts, 1);
    assert.match(failures.failures[0]!.message, /^the relay refused the mail: .*550 mailbox unavailable/);
  });
});
