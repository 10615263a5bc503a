// Goal: docs/configuration.md is exactly what the schema renders, and every field in it is explained.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultTimings } from '../src/core/timings.js';
import { AgentConfigSchema, ClusterConfigSchema, WitnessConfigSchema, configReferenceCommand, configReferencePath, describeConfigSchema } from '../src/config/index.js';
import { walkSchema } from '../src/config/schema-walk.js';

test('docs/configuration.md is in step with the schema', () => {
  const onDisk = readFileSync(new URL(`../../../${configReferencePath}`, import.meta.url), 'utf8');
  const rendered = describeConfigSchema();
  if (onDisk === rendered) return;
  const a = onDisk.split('\n');
  const b = rendered.split('\n');
  const first = a.findIndex((line, i) => line !== b[i]);
  const at = first < 0 ? Math.min(a.length, b.length) : first;
  assert.fail(
    `${configReferencePath} is out of date with the config schema; regenerate it with \`${configReferenceCommand}\` and commit it.\n` +
      `first difference at line ${at + 1}:\n  file:     ${a[at] ?? '(end of file)'}\n  schema:   ${b[at] ?? '(end of file)'}`,
  );
});

test('every field of every config file has a description', () => {
  const stops = new Map([[ClusterConfigSchema, 'cluster block']]);
  for (const [name, schema] of [['agent', AgentConfigSchema], ['witness', WitnessConfigSchema], ['cluster', ClusterConfigSchema]] as const) {
    const { rows, subTables } = walkSchema(schema, name === 'cluster' ? new Map() : stops);
    for (const row of [...rows, ...subTables.flatMap((t) => t.rows)]) {
      assert.ok(row.description.length > 10, `${name} file: ${row.path} has no .describe() text`);
    }
  }
});

test('the reference documents every timing with its default', () => {
  const { rows } = walkSchema(ClusterConfigSchema);
  for (const [field, value] of Object.entries(defaultTimings)) {
    const row = rows.find((r) => r.path === `timings.${field}`);
    assert.ok(row, `timings.${field} is missing from the reference`);
    assert.equal(row.defaultText, `\`${value}\``);
  }
});

test('both VIP modes get a table of their own', () => {
  const { subTables } = walkSchema(ClusterConfigSchema);
  assert.deepEqual(subTables.map((t) => t.title), ['vip with mode: secondary-ip', 'vip with mode: route-table']);
  const routeTable = subTables[1]?.rows.find((r) => r.path === 'vip.routeTableIds');
  assert.equal(routeTable?.defaultText, 'required');
});
