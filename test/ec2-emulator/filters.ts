// Describe* filters as EC2 applies them: a resource matches when every filter matches (AND) and a
// filter matches when any of its values matches any of the resource's values for it (OR). Values
// may use the wildcards `*` and `?` (escaped with a backslash).
import { Ec2ApiError } from './errors.js';
import type { Filter } from './query-params.js';
import type { Tags } from './model.js';

/** For each supported filter name, the resource's values it is compared against. */
export type FilterFields<T> = Readonly<Record<string, (resource: T) => readonly string[]>>;

export function wildcardPattern(value: string): RegExp {
  let source = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) source += escapeRegex(value[++i]!);
    else if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else source += escapeRegex(c);
  }
  return new RegExp(`^${source}$`, 's');
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Tag filters (`tag:<key>` and `tag-key`) work alike on every resource type with tags. */
function tagValues(filterName: string, tags: Tags): readonly string[] | undefined {
  if (filterName.startsWith('tag:')) {
    const key = filterName.slice('tag:'.length);
    return key in tags ? [tags[key]!] : [];
  }
  if (filterName === 'tag-key') return Object.keys(tags);
  return undefined;
}

/** Throws InvalidParameterValue for a filter the resource type does not support, as EC2 does. */
export function checkFilterNames<T>(filters: readonly Filter[], fields: FilterFields<T>): void {
  for (const filter of filters) {
    const supported = filter.name in fields || filter.name.startsWith('tag:') || filter.name === 'tag-key';
    if (!supported) throw new Ec2ApiError('InvalidParameterValue', `The filter '${filter.name}' is invalid`);
  }
}

export function matchesFilters<T>(
  resource: T,
  tags: Tags,
  filters: readonly Filter[],
  fields: FilterFields<T>,
): boolean {
  return filters.every((filter) => {
    const values = tagValues(filter.name, tags) ?? fields[filter.name]!(resource);
    return filter.values.some((wanted) => {
      const pattern = wildcardPattern(wanted);
      return values.some((v) => pattern.test(v));
    });
  });
}
