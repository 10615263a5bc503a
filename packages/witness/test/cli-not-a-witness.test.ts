// Goal: the CLI says plainly when what answers at --witness is not a pgvip witness, and never reads
// an unbounded reply. Given real HTTP servers on loopback that are not witnesses: a 404 with an empty
// body (once printed "the witness refused: " with no reason), an error page, and a 200 with an endless
// body (once read until the timeout, holding all of it): each ends with exit 3 and a sentence that
// names the address and what came back, and the endless body is cut at 64 KiB within a second.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { OperatorClient } from '../src/cli/api.js';
import { CliError, exitCodes } from '../src/cli/errors.js';
import { runPgvip } from './cli-helpers.js';

async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

function client(t: TestContext, baseUrl: string): OperatorClient {
  const c = new OperatorClient({ baseUrl, token: 'a-token', tokenSource: 'test', readTimeoutMs: 5_000, commandTimeoutMs: 5_000 });
  t.after(() => c.close());
  return c;
}

const isCliError = (exitCode: number, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CliError, String(e));
  assert.equal(e.exitCode, exitCode);
  assert.match(e.message, message);
  return true;
};

test('a 404 with an empty body is "not a pgvip witness", for reads and commands, and exits 3', async (t) => {
  const url = await serve(t, (req, res) => {
    req.resume();
    res.writeHead(404).end();
  });
  const c = client(t, url);
  const expected = new RegExp(`^the server at ${url} is not a pgvip witness \\(HTTP 404, empty body\\); is --witness the operator API's address\\?$`);
  await assert.rejects(c.clusters(), isCliError(exitCodes.unreachable, expected));
  await assert.rejects(c.command('main', 'maintenance', { on: true }), isCliError(exitCodes.unreachable, expected));
  // Not "no such cluster": a 404 only means that when the witness says so.
  await assert.rejects(c.cluster('main'), isCliError(exitCodes.unreachable, expected));
  const r = await runPgvip(['--witness', url, 'status']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stderr, `pgvip: the server at ${url} is not a pgvip witness (HTTP 404, empty body); is --witness the operator API's address?\n`);
});

test('an error page, or JSON without a pgvip error code, is "not a pgvip witness" with the start of the body', async (t) => {
  let answer: { status: number; type: string; body: string } = { status: 502, type: 'text/html', body: '<html>\n<h1>Bad Gateway</h1>\x1b]0;owned\x07</html>' };
  const url = await serve(t, (req, res) => {
    req.resume();
    res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
  });
  const c = client(t, url);
  await assert.rejects(c.clusters(), isCliError(exitCodes.unreachable, /^the server at .* is not a pgvip witness \(HTTP 502, body: "<html> <h1>Bad Gateway<\/h1> \]0;owned <\/html>"\)/));
  answer = { status: 401, type: 'application/json', body: '{"error":"Unauthorized","statusCode":401}' };
  await assert.rejects(c.clusters(), isCliError(exitCodes.unreachable, /is not a pgvip witness \(HTTP 401, body: /));
  // The witness's own refusals keep their meaning.
  answer = { status: 401, type: 'application/json', body: '{"error":{"code":"PGVIP_OPERATOR_AUTH","message":"PGVIP_OPERATOR_AUTH: no"}}' };
  await assert.rejects(c.clusters(), isCliError(exitCodes.auth, /^the witness refused the request \(HTTP 401: no\)/));
  answer = { status: 404, type: 'application/json', body: '{"error":{"code":"PGVIP_UNKNOWN_CLUSTER","message":"PGVIP_UNKNOWN_CLUSTER: x"}}' };
  assert.equal(await c.cluster('x'), undefined);
});

test('an endless reply is cut at 64 KiB at once, with PGVIP_REPLY_TOO_LARGE', async (t) => {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const url = await serve(t, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    const pump = () => {
      while (!res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    pump();
  });
  const c = client(t, url);
  const started = performance.now();
  await assert.rejects(c.clusters(), (e) => {
    assert.ok(e instanceof CliError, String(e));
    assert.equal(e.exitCode, exitCodes.unreachable);
    assert.equal(e.code, 'PGVIP_REPLY_TOO_LARGE');
    assert.match(e.message, /did not answer like a pgvip witness \(GET \/api\/v1\/clusters: the reply is more than 65536 bytes; pgvip reads at most 65536 bytes/);
    return true;
  });
  const ms = performance.now() - started;
  assert.ok(ms < 1_000, `took ${Math.round(ms)} ms`);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(sent < 16 * 1024 ** 2, `the server got ${sent} bytes out`);
});
