// What the Prometheus rules and the Grafana dashboard may name: the metrics pgvip's own registries
// export (read from the code, so a renamed metric breaks the check), and the metric names a PromQL
// expression selects. The parse is the PromQL the files use (selectors, functions, aggregations with
// by/without, vector matching); promtool checks the full syntax separately.
import { createAgentMetrics } from '../../packages/agent/src/metrics.js';
import { createLogicalSlotMetrics } from '../../packages/agent/src/logical-slot-copy.js';
import { createSlotMetrics } from '../../packages/agent/src/slot-keeper.js';
import { createWitnessMetrics } from '../../packages/witness/src/metrics.js';

/** Every series name the agent's and the witness's /metrics can show (histograms with their suffixes). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const agent = createAgentMetrics({ cluster: 'c', node: 'n' }).registry;
  createSlotMetrics(agent); // the slot keeper's, in the agent's registry
  createLogicalSlotMetrics(agent); // the copies of logical slots' (replication.logicalSlots)
  const registries = [agent, createWitnessMetrics().registry];
  const names = new Set<string>();
  for (const r of registries) {
    for (const m of await r.getMetricsAsJSON()) {
      const type = String(m.type);
      if (type === 'histogram' || type === 'summary') {
        for (const suffix of type === 'histogram' ? ['_bucket', '_sum', '_count'] : ['', '_sum', '_count']) names.add(`${m.name}${suffix}`);
      } else {
        names.add(m.name);
      }
    }
  }
  return names;
}

const keywords = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan']);

/** The metric (or recording-rule) names an expression selects. */
export function metricNamesIn(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings, e.g. histogram_quantile's label or label_replace's
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ')
    .replace(/(?<![A-Za-z0-9_:])(0x[0-9a-f]+|\d+(\.\d*)?(e[+-]?\d+)?)(?![A-Za-z0-9_:])/gi, ' '); // numbers
  const names: string[] = [];
  for (const m of e.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    if (keywords.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(e.slice(m.index + word.length))) continue; // a function or aggregation
    names.push(word);
  }
  return [...new Set(names)];
}
