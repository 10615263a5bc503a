// Text that came from outside pgvip (a webhook's answer, a hook's stderr, a name a client claimed)
// is stored in the event history and printed on operators' terminals. A terminal obeys what such
// text holds: ESC[2J clears the screen, ESC]0;…BEL sets the window title, OSC 52 writes the
// clipboard, a bare CR overwrites the line, bidi controls reorder what is shown. cleanText turns
// untrusted text into plain text: whole escape sequences are dropped, then every other C0/C1
// control character and DEL, and the result is bounded in length. Used when recording (history,
// notifiers) and again when printing (the CLI), so neither an old record nor a new path can slip
// a sequence through.

export interface CleanTextOptions {
  /** Longest result, in UTF-16 code units (default 2000); longer text ends in "…". */
  readonly maxChars?: number;
  /** Keep line feeds and tabs (default false: every line break or tab becomes one space). */
  readonly multiline?: boolean;
}

/* eslint-disable no-control-regex -- matching control characters is the point of this module */
// CSI: ESC [ or 0x9b, parameter bytes, intermediate bytes, one final byte.
const csi = /(?:\u001b\[|\u009b)[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?/g;
// OSC, DCS, SOS, PM, APC: an introducer, a payload, and BEL or ST (ESC \ or 0x9c). Only a
// terminated string is dropped whole; an unterminated one loses its introducer below, and the
// rest stays visible rather than hiding the remainder of the text.
const controlString = /(?:\u001b[\]PX^_]|[\u0090\u0098\u009d-\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)/g;
// Any other escape: ESC, intermediate bytes, one final byte (e.g. ESC c, which resets the terminal).
const escape = /\u001b[\u0020-\u002f]*[\u0030-\u007e]?/g;
const lineBreaks = /[\t\n\v\f\r\u2028\u2029]+/g;
// C0 except tab and line feed, DEL, C1; and the bidirectional controls that reorder displayed text.
const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const multilineBreaks = /\r\n?|[\v\f\u2028\u2029]/g;
/* eslint-enable no-control-regex */

/** `text` as plain, printable text of at most `maxChars` (see the module comment). */
export function cleanText(text: string, options: CleanTextOptions = {}): string {
  const maxChars = Math.max(1, options.maxChars ?? 2000);
  let out = text.replace(controlString, '').replace(csi, '').replace(escape, '');
  out = options.multiline === true ? out.replace(multilineBreaks, '\n') : out.replace(lineBreaks, ' ');
  out = out.replace(controls, '');
  if (out.length <= maxChars) return out;
  let cut = out.slice(0, maxChars - 1);
  // Never end on half a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * A copy of `value` (JSON-like data: objects, arrays, primitives) with every string passed through
 * cleanText, for documents from a peer that are printed field by field.
 */
export function cleanStrings<T>(value: T, options: CleanTextOptions = {}): T {
  if (typeof value === 'string') return cleanText(value, options) as T;
  if (Array.isArray(value)) return value.map((item: unknown) => cleanStrings(item, options)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cleanStrings(v, options)])) as T;
  }
  return value;
}

const jsonUnsafe = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]/g;

/**
 * JSON text safe to print on a terminal without losing anything: JSON.stringify already escapes
 * C0 controls (ESC becomes \u001b); this also escapes DEL, C1 (0x9b is CSI) and bidi controls.
 */
export function terminalSafeJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(jsonUnsafe, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
