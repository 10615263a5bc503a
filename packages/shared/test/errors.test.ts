// Goal: the error catalogue is well-formed and docs/errors.md lists every code exactly as the
// catalogue says (the test fails when the docs are stale).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCatalogue, PgvipError, isPgvipError, type ErrorCode } from '../src/errors.js';
import { errorsReferencePath, renderErrorsReference } from '../src/errors-reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('every code is PGVIP_ upper snake case with a message; HTTP statuses are 4xx/5xx', () => {
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.match(code, /^PGVIP_[A-Z0-9_]+$/);
    assert.ok(spec.message.length > 5, code);
    const status = (spec as { httpStatus?: number }).httpStatus;
    if (status !== undefined) assert.ok(status >= 400 && status < 600, code);
  }
});

test('a PgvipError carries its code, category, status and a message naming the detail', () => {
  const e = new PgvipError('PGVIP_STALE_TERM' as ErrorCode, 'term 3 < 5');
  assert.ok(isPgvipError(e, 'PGVIP_STALE_TERM' as ErrorCode));
  assert.equal(e.httpStatus, 409);
  assert.equal(e.category, 'protocol');
  assert.match(e.message, /^PGVIP_STALE_TERM: .*term 3 < 5$/);
});

test('docs/errors.md is in step with the catalogue', () => {
  const onDisk = readFileSync(path.join(root, errorsReferencePath), 'utf8');
  assert.equal(onDisk, renderErrorsReference(), 'docs/errors.md is stale: run `npm run docs:errors`');
});
