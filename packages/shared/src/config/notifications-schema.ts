// The `notifications` block: where the witness tells people what happened. Every channel is
// optional; the default is to notify nobody (events still go to the log and the event history).
import { z } from 'zod';
import { notificationEventNames } from './events.js';
import { absolutePath, closedObject, durationMs, emailAddress, flag, host, httpUrl, integer, listOf, oneOf, port } from './fields.js';
import { addComposedIssue, problem } from './problem.js';

const everyEvent = '*';

/** Either '*' alone or a list of event names; '*' mixed with names is almost certainly a mistake. */
function eventFilter() {
  return listOf(oneOf([everyEvent, ...notificationEventNames]), 'event names', 1)
    .superRefine((events, ctx) => {
      if (events.includes(everyEvent) && events.length > 1) {
        addComposedIssue(ctx, [], problem("mixes '*' with event names", events, "'*' already means every event: list '*' alone, or only the names you want"));
      }
    })
    .default([everyEvent])
    .meta({ typeLabel: "list of event names, or ['*']" })
    .describe("Which events this channel receives: '*' for all, or names from the list of notification events.");
}

const WebhookSchema = closedObject({
  url: httpUrl().describe('Where the witness POSTs each event as JSON.'),
  secretFile: absolutePath('/etc/pgvip/webhook.secret').optional().describe('File holding a secret used to sign each request body (HMAC-SHA256 header), so the receiver can tell the events are genuine. Mode 0600.'),
  events: eventFilter(),
  timeoutMs: durationMs(100, 60_000).default(5000).describe('Timeout of one delivery attempt.'),
}).describe('One HTTP endpoint that receives events.');

const CommandSchema = closedObject({
  path: absolutePath('/usr/local/bin/pgvip-notify').describe('Executable run once per event with the event as JSON on stdin.'),
  args: listOf(z.string({ error: 'must be a string' }), 'strings').default([]).describe('Arguments passed to the command (no shell is involved).'),
  events: eventFilter(),
  timeoutMs: durationMs(100, 600_000).default(10_000).describe('The command is killed when it runs longer than this.'),
}).describe('A local command run for each event (to page, chat, or log elsewhere).');

const EmailSchema = closedObject({
  smtpHost: host('smtp.example.com').describe('SMTP relay the witness hands mail to.'),
  smtpPort: port().default(25).describe('Port of the SMTP relay.'),
  from: emailAddress('pgvip@example.com').describe('Sender address.'),
  to: listOf(emailAddress('dba@example.com'), 'email addresses', 1).describe('Recipients.'),
  ratePerHour: integer(1, 3600).default(6).describe('At most this many mails per hour; further events in the hour are summarised in the next mail, so a flapping cluster cannot flood an inbox.'),
  events: eventFilter(),
  startTls: flag().optional().meta({ defaultLabel: 'when offered' }).describe('true: require STARTTLS; false: never use it; unset: use it when the relay offers it.'),
}).describe('Plain SMTP mail for each event, rate-limited.');

export const NotificationsSchema = closedObject({
  webhooks: listOf(WebhookSchema, 'webhooks').default([]).describe('HTTP endpoints that receive events.'),
  command: CommandSchema.optional(),
  email: EmailSchema.optional(),
  nodeHoldDownMs: durationMs(0, 3_600_000).default(60_000).describe('A node that fails or goes unreachable again within this long of coming back is not announced again (its failure-detected or node-unreachable, and the node-recovered that ends it, are held back and counted) until it has stayed up or down for this long, or at most every 5 minutes while it flaps: then one summary, "flapping: N transitions in T", goes out as the event of the node\'s state. Only notifications are held, never a decision: votes, failover-blocked and the failover event are as without it. 0: announce every transition (docs/notifications.md, "A flapping node").'),
})
  .prefault({})
  .describe('Where the witness sends events. All channels are optional; by default nobody is notified.');
