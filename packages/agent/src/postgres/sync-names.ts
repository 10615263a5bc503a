// synchronous_standby_names read back the way PostgreSQL reads it (syncrep_scanner.l and
// syncrep_gram.y), so the agent can say which claim the setting in force makes
// (docs/design.md, "More than one standby") and which sync_priority each walsender must show once
// it has applied a new value (sync-setting.ts).
//
//   ''                      no synchronous replication
//   a, b                    FIRST 1 (a, b)
//   2 (a, b, c)             FIRST 2 (a, b, c)
//   FIRST 2 (a, b, c)       the 2 connected standbys listed first
//   ANY 2 (a, b, c)         any 2 of them (quorum commit)
//
// Names are identifiers ([A-Za-z_][A-Za-z0-9_$]*), numbers, "double quoted" (with "" for a quote) or
// '*' (any standby, also when quoted); ANY and FIRST are keywords in any case; names match
// application_name without regard to case.

export interface StandbyNamesSetting {
  /** 'first': priority (the first `count` connected in list order); 'any': quorum. */
  readonly method: 'first' | 'any';
  readonly count: number;
  /** As listed, unquoted. */
  readonly names: readonly StandbyName[];
}

export interface StandbyName {
  readonly name: string;
  /** `*`, quoted or not (PostgreSQL compares the stored name with "*"): matches every standby. */
  readonly wildcard: boolean;
}

type Token =
  | { readonly t: 'word'; readonly text: string; readonly quoted: boolean }
  | { readonly t: '(' | ')' | ',' | '*' };

const identStart = /[A-Za-z_\u0080-\uffff]/;
const identCont = /[A-Za-z_0-9$\u0080-\uffff]/;

function tokenize(text: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '(' || c === ')' || c === ',' || c === '*') {
      out.push({ t: c });
      i += 1;
    } else if (c === '"') {
      let name = '';
      i += 1;
      for (;;) {
        if (i >= text.length) return null; // unterminated
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        name += text[i];
        i += 1;
      }
      out.push({ t: 'word', text: name, quoted: true });
    } else if (/[0-9]/.test(c)) {
      let j = i;
      while (j < text.length && /[0-9]/.test(text[j]!)) j += 1;
      out.push({ t: 'word', text: text.slice(i, j), quoted: false });
      i = j;
    } else if (identStart.test(c)) {
      let j = i + 1;
      while (j < text.length && identCont.test(text[j]!)) j += 1;
      out.push({ t: 'word', text: text.slice(i, j), quoted: false });
      i = j;
    } else {
      return null;
    }
  }
  return out;
}

const isKeyword = (tok: Token | undefined, word: 'any' | 'first'): boolean =>
  tok?.t === 'word' && !tok.quoted && tok.text.toLowerCase() === word;
const isNumber = (tok: Token | undefined): tok is { t: 'word'; text: string; quoted: false } =>
  tok?.t === 'word' && !tok.quoted && /^[0-9]+$/.test(tok.text);

/** A comma-separated list of names up to the end; null when it is not one. */
function nameList(tokens: readonly Token[]): StandbyName[] | null {
  const names: StandbyName[] = [];
  for (let i = 0; i < tokens.length; i += 2) {
    const tok = tokens[i];
    if (tok?.t === '*') names.push({ name: '*', wildcard: true });
    else if (tok?.t === 'word' && (tok.quoted || (!isKeyword(tok, 'any') && !isKeyword(tok, 'first')))) names.push({ name: tok.text, wildcard: tok.text === '*' });
    else return null;
    const sep = tokens[i + 1];
    if (sep !== undefined && sep.t !== ',') return null;
    if (sep !== undefined && i + 2 >= tokens.length) return null; // trailing comma
  }
  return names.length === 0 ? null : names;
}

/**
 * The setting as PostgreSQL reads it; null for '' (no synchronous replication). Throws a TypeError
 * for text PostgreSQL would refuse (it can never be the value in force).
 */
export function parseSynchronousStandbyNames(value: string): StandbyNamesSetting | null {
  const tokens = tokenize(value);
  if (tokens === null) throw new TypeError(`not a synchronous_standby_names value: ${JSON.stringify(value)}`);
  if (tokens.length === 0) return null;
  let method: 'first' | 'any' = 'first';
  let rest: readonly Token[] = tokens;
  if (isKeyword(rest[0], 'any') || isKeyword(rest[0], 'first')) {
    method = isKeyword(rest[0], 'any') ? 'any' : 'first';
    rest = rest.slice(1);
    if (!isNumber(rest[0]) || rest[1]?.t !== '(') throw new TypeError(`${method.toUpperCase()} needs a number and a list in parentheses: ${JSON.stringify(value)}`);
  }
  if (isNumber(rest[0]) && rest[1]?.t === '(') {
    const count = Number(rest[0].text);
    if (rest[rest.length - 1]?.t !== ')') throw new TypeError(`unbalanced parentheses: ${JSON.stringify(value)}`);
    const names = nameList(rest.slice(2, -1));
    if (names === null || count <= 0) throw new TypeError(`not a synchronous_standby_names value: ${JSON.stringify(value)}`);
    return { method, count, names };
  }
  const names = nameList(rest);
  if (names === null) throw new TypeError(`not a synchronous_standby_names value: ${JSON.stringify(value)}`);
  return { method: 'first', count: 1, names };
}

/**
 * The sync_priority PostgreSQL gives a walsender whose application_name is `applicationName`
 * (SyncRepGetStandbyPriority): 0 when unlisted, 1 for every listed one under ANY, its place in the
 * list under FIRST. The first matching entry counts; '*' matches every name.
 */
export function standbyPriority(setting: StandbyNamesSetting | null, applicationName: string): number {
  if (setting === null) return 0;
  const at = setting.names.findIndex((n) => n.wildcard || n.name.toLowerCase() === applicationName.toLowerCase());
  if (at < 0) return 0;
  return setting.method === 'any' ? 1 : at + 1;
}

/**
 * The claim a setting makes about nodes ("every acknowledged commit is flushed on at least k of these
 * members"), as `{members, k}` with members mapped to node ids by `nodeOf` (a name no node uses stays
 * as it is: it can never be a node, which makes the claim weaker about nodes, as it is). FIRST k (…)
 * makes the same claim as ANY k (…): the k that acknowledged are among the listed. A '*' lets any
 * walsender acknowledge (a base backup's, a tool's): it claims nothing about nodes. k is at most the
 * number of distinct members.
 */
export function claimOfSetting(
  setting: StandbyNamesSetting | null,
  nodeOf: (applicationName: string) => string | undefined,
): { readonly members: readonly string[]; readonly k: number } {
  if (setting === null || setting.names.some((n) => n.wildcard)) return { members: [], k: 0 };
  const members = [...new Set(setting.names.map((n) => nodeOf(n.name) ?? n.name))].sort();
  return { members, k: Math.min(setting.count, members.length) };
}
