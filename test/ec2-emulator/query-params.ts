// Reading an EC2 Query API request: form fields with flattened lists (`PrivateIpAddress.1=...`)
// and structs in lists (`Filter.1.Name=...&Filter.1.Value.1=...`). Every accessor reports a bad or
// missing value with the EC2 error a client would get from AWS.
import { Ec2ApiError, invalidValue, missingParameter } from './errors.js';

export interface Filter {
  readonly name: string;
  readonly values: readonly string[];
}

/** Parameters every request carries besides the operation's own. */
const envelopeParameters = new Set(['Action', 'Version']);

function indexedEntries(fields: URLSearchParams, pattern: RegExp): Array<[number, RegExpExecArray, string]> {
  const found: Array<[number, RegExpExecArray, string]> = [];
  for (const [key, value] of fields) {
    const m = pattern.exec(key);
    if (m) found.push([Number(m[1]), m, value]);
  }
  return found.sort((a, b) => a[0] - b[0]);
}

export class QueryParams {
  readonly #fields: URLSearchParams;

  constructor(fields: URLSearchParams) {
    this.#fields = fields;
  }

  static parse(body: string, urlQuery = ''): QueryParams {
    // AWS accepts the parameters in the URL query as well as in the body; the body wins.
    const fields = new URLSearchParams(urlQuery);
    for (const [key, value] of new URLSearchParams(body)) fields.set(key, value);
    return new QueryParams(fields);
  }

  /** Every field as sent, for the request log. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.#fields);
  }

  get action(): string | undefined {
    return this.string('Action');
  }

  string(name: string): string | undefined {
    return this.#fields.get(name) ?? undefined;
  }

  /** `spokenName`: how EC2's MissingParameter message names the field, where that differs from the wire name. */
  required(name: string, spokenName = name): string {
    const value = this.string(name);
    if (value === undefined || value === '') throw missingParameter(spokenName);
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (value.toLowerCase() === 'true') return true;
    if (value.toLowerCase() === 'false') return false;
    throw invalidValue(name, value, 'Expected a boolean (true or false).');
  }

  integer(name: string, range: { min: number; max: number }): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || n < range.min || n > range.max) {
      throw invalidValue(name, value, `Expected an integer between ${range.min} and ${range.max}.`);
    }
    return n;
  }

  /** A flattened list `Name.1`, `Name.2`, ... in index order. */
  list(name: string): string[] {
    const pattern = new RegExp(`^${name}\\.(\\d+)$`);
    return indexedEntries(this.#fields, pattern).map(([, , value]) => value);
  }

  /** `Filter.N.Name` with its values `Filter.N.Value.M`, in index order. */
  filters(): Filter[] {
    const names = indexedEntries(this.#fields, /^Filter\.(\d+)\.Name$/);
    const indexes = new Set([...names.map(([n]) => n), ...indexedEntries(this.#fields, /^Filter\.(\d+)\.Value\.\d+$/).map(([n]) => n)]);
    return [...indexes].sort((a, b) => a - b).map((n) => {
      const name = this.string(`Filter.${n}.Name`);
      if (name === undefined || name === '') throw missingParameter(`Filter.${n}.Name`);
      const values = indexedEntries(this.#fields, new RegExp(`^Filter\\.${n}\\.Value\\.(\\d+)$`)).map(([, , v]) => v);
      return { name, values };
    });
  }

  /**
   * Rejects parameters the operation does not define, as AWS does ("The parameter X is not
   * recognized"). That catches a client sending e.g. DryRun to AssignPrivateIpAddresses, which has none.
   */
  rejectUnknown(known: ReadonlySet<string>): void {
    for (const key of this.#fields.keys()) {
      const top = key.split('.')[0]!;
      // X-Amz-* fields carry a presigned request's signature, not operation input.
      if (!envelopeParameters.has(top) && !known.has(top) && !top.startsWith('X-Amz-')) {
        throw new Ec2ApiError('UnknownParameter', `The parameter ${top} is not recognized`);
      }
    }
  }
}
