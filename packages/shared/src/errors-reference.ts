// Renders docs/errors.md from the error catalogue, so the docs can never miss a code (a test
// compares the file with this output). Regenerate with `npm run docs:errors`.
import { errorCatalogue, type ErrorCategory, type ErrorSpec } from './errors.js';

const categoryTitles: Record<ErrorCategory, string> = {
  config: 'Configuration',
  auth: 'Authentication between nodes',
  protocol: 'Protocol and peers',
  state: 'Durable state',
  postgres: 'PostgreSQL',
  vip: 'VIP and EC2',
  operator: 'Witness operator API',
  internal: 'Internal',
};

export const errorsReferencePath = 'docs/errors.md';

export function renderErrorsReference(): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from packages/shared/src/errors.ts by `npm run docs:errors`; do not edit by hand. -->',
    '',
    'Every error pgvip reports carries one of these codes. Log lines have it in the `code` field,',
    'HTTP replies in `{"error": {"code", "message"}}`, CLI messages at the start of the line. The',
    'runbook (docs/runbook.md) says what to do about the ones an operator meets.',
    '',
  ];
  const byCategory = new Map<ErrorCategory, [string, ErrorSpec][]>();
  for (const [code, spec] of Object.entries(errorCatalogue) as [string, ErrorSpec][]) {
    const list = byCategory.get(spec.category) ?? [];
    list.push([code, spec]);
    byCategory.set(spec.category, list);
  }
  for (const [category, title] of Object.entries(categoryTitles) as [ErrorCategory, string][]) {
    const list = byCategory.get(category);
    if (list === undefined) continue;
    lines.push(`## ${title}`, '', '| code | HTTP | meaning |', '|---|---|---|');
    for (const [code, spec] of list) lines.push(`| \`${code}\` | ${spec.httpStatus ?? '—'} | ${spec.message.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
