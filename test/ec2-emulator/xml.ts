// The XML documents of the EC2 Query API: success as `<{Op}Response xmlns=...>` with a requestId,
// errors as `<Response><Errors><Error>...</Error></Errors><RequestID>...</RequestID></Response>`.

export const ec2Namespace = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export interface XmlElement {
  readonly name: string;
  /** Text content, child elements, or nothing (rendered as `<name/>`, as EC2 does for empty sets). */
  readonly content: string | readonly XmlElement[];
}

type Content = string | number | boolean | readonly XmlElement[] | undefined;

/** An element; undefined content yields no element at all (absent optional fields are omitted). */
export function el(name: string, content: Content): XmlElement[] {
  if (content === undefined) return [];
  return [{ name, content: typeof content === 'object' ? content : String(content) }];
}

/** A set: `<name><item>..</item><item>..</item></name>`. */
export function set<T>(name: string, items: readonly T[], item: (value: T) => XmlElement[]): XmlElement[] {
  return el(
    name,
    items.flatMap((value) => el('item', item(value))),
  );
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

function render(node: XmlElement): string {
  if (typeof node.content === 'string') return `<${node.name}>${escapeXml(node.content)}</${node.name}>`;
  if (node.content.length === 0) return `<${node.name}/>`;
  return `<${node.name}>${node.content.map(render).join('')}</${node.name}>`;
}

export function successDocument(action: string, requestId: string, body: readonly XmlElement[]): string {
  const children = [...el('requestId', requestId), ...body].map(render).join('\n  ');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${ec2Namespace}">\n  ${children}\n</${action}Response>\n`;
}

export function errorDocument(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(code)}</Code>` +
    `<Message>${escapeXml(message)}</Message></Error></Errors><RequestID>${escapeXml(requestId)}</RequestID></Response>\n`
  );
}
