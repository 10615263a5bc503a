// Where a primary_conninfo points: its host and port only (it may carry a password, which must not
// travel further than this function). libpq's keyword/value form (values bare or in single quotes with
// backslash escapes; a repeated keyword: the last one wins) and its URI form; the first host of a
// list, with its port (or the one port given for all); port 5432 when none is given.

export interface ConninfoTarget {
  readonly host: string;
  readonly port: number;
}

function keywordValues(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i += 1;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) return out;
    const eq = text.indexOf('=', i);
    if (eq < 0) return null;
    const key = text.slice(i, eq).trim();
    i = eq + 1;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i += 1;
      for (;;) {
        if (i >= text.length) return null; // unterminated quote
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i += 1;
          break;
        } else {
          value += c;
          i += 1;
        }
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) i += 1;
        value += text[i];
        i += 1;
      }
    }
    out.set(key, value);
  }
}

function fromUri(text: string): Map<string, string> | null {
  try {
    // URL cannot hold a host list; the first host is what counts here.
    const m = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?([^/?]*)/.exec(text);
    if (m === null) return null;
    const out = new Map<string, string>();
    const first = (m[1] ?? '').split(',')[0] ?? '';
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(first);
    const [host, port] = bracketed ? [bracketed[1] ?? '', bracketed[2]] : [first.split(':')[0] ?? '', first.split(':')[1]];
    if (host !== '') out.set('host', decodeURIComponent(host));
    if (port !== undefined && port !== '') out.set('port', port);
    const query = text.includes('?') ? new URLSearchParams(text.slice(text.indexOf('?') + 1)) : new URLSearchParams();
    for (const [k, v] of query) out.set(k, v);
    return out;
  } catch {
    return null;
  }
}

/**
 * The first host and its port that `conninfo` names; null when it names none (empty, unparsable, a
 * socket directory).
 */
export function conninfoTarget(conninfo: string): ConninfoTarget | null {
  const text = conninfo.trim();
  if (text === '') return null;
  const pairs = /^postgres(ql)?:\/\//.test(text) ? fromUri(text) : keywordValues(text);
  if (pairs === null) return null;
  const host = (pairs.get('host') ?? pairs.get('hostaddr') ?? '').split(',')[0]?.trim() ?? '';
  if (host === '' || host.startsWith('/')) return null;
  const ports = (pairs.get('port') ?? '').split(',').map((p) => p.trim());
  const port = Number(ports[0] === undefined || ports[0] === '' ? '5432' : ports[0]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
  return { host, port };
}
