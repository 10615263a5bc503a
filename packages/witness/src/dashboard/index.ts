// The witness dashboard: one read-only page at GET / on the operator API's server, showing every
// cluster the witness serves and updating itself every 2 s from GET api/v1/clusters on the same
// origin. Self-contained (inline style and script, no CDN, no font or image requests), locked down
// by a Content-Security-Policy that allows exactly the inline code below and same-origin fetches.
// The page holds no data itself, so it is served without a token; the data requests carry the
// operator token, which the page takes once from `?token=` or asks for when the API answers 401.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { dashboardScript } from './client.js';
import { dashboardStyle } from './style.js';

export interface DashboardOptions {
  /** How often the page polls the API (default 2000 ms). */
  readonly pollMs?: number;
}

export const defaultDashboardPollMs = 2_000;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page, and the headers that must travel with it. */
export function dashboardPage(options: DashboardOptions = {}): { html: string; headers: Record<string, string> } {
  const pollMs = options.pollMs ?? defaultDashboardPollMs;
  if (!(Number.isInteger(pollMs) && pollMs >= 100)) throw new RangeError(`dashboard pollMs must be an integer ≥ 100, got ${pollMs}`);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>pgvip witness</title>
<link rel="icon" href="data:,">
<style>${dashboardStyle}</style>
</head>
<body data-poll-ms="${pollMs}">
<header><h1>pgvip <span>witness dashboard (read-only)</span></h1><div id="status" role="status" aria-live="polite">Loading…</div></header>
<form id="login" hidden>
<p>This witness's operator API needs its token (operatorApi.tokenFile). It is kept for this browser tab only.</p>
<label for="token">Operator token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<div id="login-problem" class="bad" role="alert"></div>
<button type="submit">Show clusters</button>
</form>
<main id="clusters" aria-label="clusters"></main>
<script>${dashboardScript}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(dashboardScript)}`,
    `style-src ${sha256(dashboardStyle)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      // The token may arrive in the URL once: never send it anywhere as a referrer.
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    },
  };
}

/** Adds GET / (the dashboard page) to the operator API's server. */
export function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): void {
  const page = dashboardPage(options);
  app.get('/', async (_req, reply) => reply.headers(page.headers).send(page.html));
}
