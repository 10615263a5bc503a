// Reading deploy/systemd's unit files as systemd does: for the unit tests, and for the lab, which runs
// the compiled daemons with their unit's environment so that what it measures is what production runs.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const unitDir = path.resolve(import.meta.dirname, '../../deploy/systemd');

/** A unit file as systemd reads it: section → key → every value assigned (keys may repeat). */
export type Unit = Map<string, Map<string, string[]>>;

export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (section === undefined || eq <= 0) throw new Error(`not a key=value line inside a section: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** The effective value of a setting: the last assignment wins, as in systemd. */
export function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** Space-separated list settings accumulate over assignments; an empty assignment resets them. */
export function list(unit: Unit, section: string, key: string): string[] {
  let items: string[] = [];
  for (const v of unit.get(section)?.get(key) ?? []) items = v === '' ? [] : [...items, ...v.split(/\s+/)];
  return items;
}

/** Splits a value into words as systemd does: on spaces, except inside double or single quotes. */
export function unitWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** The variables `Environment=` lines set (a later assignment wins; an empty one resets them all). */
export function environmentOf(unit: Unit): Record<string, string> {
  let env: Record<string, string> = {};
  for (const line of unit.get('Service')?.get('Environment') ?? []) {
    if (line === '') env = {};
    for (const item of unitWords(line)) {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new Error(`Environment= item without a value: ${item}`);
      env[item.slice(0, eq)] = item.slice(eq + 1);
    }
  }
  return env;
}

/** deploy/systemd/pgvip-<daemon>.service, parsed. */
function daemonUnit(daemon: 'agent' | 'witness'): Unit {
  return parseUnit(readFileSync(path.join(unitDir, `pgvip-${daemon}.service`), 'utf8'));
}

/** The environment deploy/systemd/pgvip-<daemon>.service gives its daemon. */
export function daemonUnitEnvironment(daemon: 'agent' | 'witness'): Record<string, string> {
  return environmentOf(daemonUnit(daemon));
}

/**
 * The Node.js flags on a unit's ExecStart line: the words between the node binary and the script
 * (V8 flags that NODE_OPTIONS does not accept must go there).
 */
export function execStartNodeFlags(unit: Unit): string[] {
  const words = unitWords(value(unit, 'Service', 'ExecStart') ?? '');
  const script = words.findIndex((w, i) => i > 0 && !w.startsWith('-'));
  return words.slice(1, script < 0 ? words.length : script);
}

/** The Node.js flags deploy/systemd/pgvip-<daemon>.service starts its daemon with. */
export function daemonUnitNodeFlags(daemon: 'agent' | 'witness'): string[] {
  return execStartNodeFlags(daemonUnit(daemon));
}
