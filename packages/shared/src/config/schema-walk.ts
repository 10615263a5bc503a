// Walks a zod schema into rows of a reference table: field path, type, default, description. It
// reads zod's definition objects (`_zod.def`, the documented hook for tools built on zod) and the
// metadata registered with `.describe()` / `.meta()`; fields.ts puts a type label on every builder.
import { z } from 'zod';
import type { FieldMeta } from './fields.js';

export interface FieldRow {
  readonly path: string;
  readonly type: string;
  /** `required`, `—` (optional, no default) or the default value as it would be written in YAML. */
  readonly defaultText: string;
  readonly description: string;
}

/** A further table, e.g. one per variant of a discriminated union. */
export interface SubTable {
  readonly title: string;
  readonly rows: readonly FieldRow[];
}

export interface WalkResult {
  readonly rows: FieldRow[];
  readonly subTables: SubTable[];
}

/** Schemas not to descend into, with the type text their row shows instead. */
export type Stops = ReadonlyMap<z.core.$ZodType, string>;

type Def = z.core.$ZodTypeDef & Record<string, unknown>;

function defOf(schema: z.core.$ZodType): Def {
  return schema._zod.def as Def;
}

interface Unwrapped {
  readonly core: z.core.$ZodType;
  readonly description: string | undefined;
  readonly meta: FieldMeta;
  readonly required: boolean;
  readonly defaultValue: unknown;
  readonly hasDefault: boolean;
  /** Set when a wrapper layer matched `stops`. */
  readonly stoppedAs: string | undefined;
}

/** Peels optional/default/prefault/pipe layers, keeping the outermost description and labels. */
function unwrap(schema: z.core.$ZodType, stops: Stops): Unwrapped {
  let core = schema;
  let description: string | undefined;
  const meta: FieldMeta = {};
  let required = true;
  let hasDefault = false;
  let defaultValue: unknown;
  let stoppedAs: string | undefined;
  for (;;) {
    const registered = z.globalRegistry.get(core) as (FieldMeta & { description?: string }) | undefined;
    description ??= registered?.description;
    meta.typeLabel ??= registered?.typeLabel;
    meta.defaultLabel ??= registered?.defaultLabel;
    stoppedAs ??= stops.get(core);
    const def = defOf(core);
    if (def.type === 'optional') {
      required = false;
    } else if (def.type === 'default' || def.type === 'prefault') {
      required = false;
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def['defaultValue'];
      }
    } else if (def.type !== 'pipe' && def.type !== 'readonly') {
      break;
    }
    const inner = (def['innerType'] ?? def['in']) as z.core.$ZodType;
    core = inner;
  }
  return { core, description, meta, required, defaultValue, hasDefault, stoppedAs };
}

function yamlText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value).replaceAll('"', "'");
}

function defaultTextOf(field: Unwrapped): string {
  if (field.meta.defaultLabel !== undefined) return field.meta.defaultLabel;
  if (field.required) return 'required';
  if (!field.hasDefault) return '—';
  const value = field.defaultValue;
  // An object defaulted to {} takes each field's own default: say so rather than print "{}".
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return 'all defaults';
  return `\`${yamlText(value)}\``;
}

function typeTextOf(core: z.core.$ZodType, label: string | undefined, stops: Stops): string {
  if (label !== undefined) return label;
  const def = defOf(core);
  switch (def.type) {
    case 'object':
      return 'mapping';
    case 'array': {
      const element = unwrap(def['element'] as z.core.$ZodType, stops);
      return `list of ${element.stoppedAs ?? pluralOf(typeTextOf(element.core, element.meta.typeLabel, stops))}`;
    }
    case 'literal':
      return (def['values'] as unknown[]).map((v) => `"${String(v)}"`).join(' | ');
    case 'union':
      return `mapping, one of the shapes below (by ${String(def['discriminator'] ?? 'shape')})`;
    default:
      return def.type;
  }
}

function pluralOf(typeText: string): string {
  return typeText.endsWith('s') ? `${typeText}es` : `${typeText}s`;
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

/** Every field under `schema`, depth first, with paths relative to `prefix` ('' for the root). */
export function walkSchema(schema: z.core.$ZodType, stops: Stops = new Map(), prefix = ''): WalkResult {
  const result: WalkResult = { rows: [], subTables: [] };
  const root = unwrap(schema, stops);
  const def = defOf(root.core);
  if (def.type !== 'object') throw new Error(`walkSchema expects an object schema at ${prefix || 'the root'}, got ${def.type}`);
  for (const [key, child] of Object.entries(def['shape'] as Record<string, z.core.$ZodType>)) {
    visitField(join(prefix, key), child, stops, result);
  }
  return result;
}

function visitField(path: string, schema: z.core.$ZodType, stops: Stops, into: WalkResult): void {
  const field = unwrap(schema, stops);
  const def = defOf(field.core);
  into.rows.push({
    path,
    type: field.stoppedAs ?? typeTextOf(field.core, field.meta.typeLabel, stops),
    defaultText: defaultTextOf(field),
    description: field.description ?? '',
  });
  if (field.stoppedAs !== undefined) return;
  if (def.type === 'object') {
    const nested = walkSchema(field.core, stops, path);
    into.rows.push(...nested.rows);
    into.subTables.push(...nested.subTables);
  } else if (def.type === 'array') {
    const element = unwrap(def['element'] as z.core.$ZodType, stops);
    if (element.stoppedAs === undefined && defOf(element.core).type === 'object') {
      const nested = walkSchema(element.core, stops, `${path}[]`);
      into.rows.push(...nested.rows);
      into.subTables.push(...nested.subTables);
    }
  } else if (def.type === 'union') {
    const discriminator = String(def['discriminator']);
    for (const option of def['options'] as z.core.$ZodType[]) {
      const optionShape = defOf(unwrap(option, stops).core)['shape'] as Record<string, z.core.$ZodType>;
      const tag = optionShape[discriminator];
      const tagValues = tag === undefined ? [] : (defOf(unwrap(tag, stops).core)['values'] as unknown[]);
      const nested = walkSchema(option, stops, path);
      into.subTables.push({ title: `${path} with ${discriminator}: ${tagValues.map(String).join(', ')}`, rows: nested.rows }, ...nested.subTables);
    }
  }
}
