// IPv4 addresses and CIDR blocks as the EC2 API sees them. Addresses are handled as unsigned 32-bit
// numbers so subnet membership and "next free address" are plain arithmetic.

export interface Cidr {
  /** Network address as an unsigned 32-bit number (host bits cleared). */
  readonly network: number;
  readonly prefixLength: number;
}

const dottedQuad = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted-quad IPv4 address; undefined when it is not one (no leading zeros, each octet ≤ 255). */
export function parseIpv4(text: string): number | undefined {
  const m = dottedQuad.exec(text);
  if (!m) return undefined;
  let value = 0;
  for (const part of m.slice(1)) {
    if (part.length > 1 && part.startsWith('0')) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/**
 * Parses `a.b.c.d/n`. With `strict`, host bits must be zero (as EC2 demands of subnet and VPC
 * blocks); otherwise they are cleared, as EC2 does for route destinations.
 */
export function parseCidr(text: string, options: { strict?: boolean } = {}): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIpv4(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (address === undefined || !/^\d{1,2}$/.test(lengthText)) return undefined;
  const prefixLength = Number(lengthText);
  if (prefixLength > 32) return undefined;
  const network = (address & maskOf(prefixLength)) >>> 0;
  if (options.strict && network !== address) return undefined;
  return { network, prefixLength };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefixLength}`;
}

/** The canonical spelling of a CIDR block (host bits cleared), or undefined when it is not one. */
export function normalizeCidr(text: string): string | undefined {
  const cidr = parseCidr(text);
  return cidr && formatCidr(cidr);
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return ((address & maskOf(cidr.prefixLength)) >>> 0) === cidr.network;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefixLength);
}

/** True when every address of `inner` lies in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefixLength >= outer.prefixLength && cidrContains(outer, inner.network);
}

/**
 * EC2 reserves five addresses in every subnet: the network address, the VPC router (+1), DNS (+2),
 * "future use" (+3) and the last address. None of them can be assigned to an interface.
 */
export function isReservedInSubnet(subnet: Cidr, address: number): boolean {
  const offset = address - subnet.network;
  return offset <= 3 || offset === cidrSize(subnet) - 1;
}
