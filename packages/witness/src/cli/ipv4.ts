// Just enough IPv4 arithmetic for doctor's "is the VIP inside the subnet" checks.

export function ipv4ToInt(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export interface Cidr {
  readonly text: string;
  readonly network: number;
  readonly prefixLength: number;
  readonly size: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [address, prefix] = text.trim().split('/');
  const base = address === undefined ? undefined : ipv4ToInt(address);
  const prefixLength = Number(prefix);
  if (base === undefined || !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) return undefined;
  const size = 2 ** (32 - prefixLength);
  const network = base - (base % size);
  return { text: `${intToIpv4(network)}/${prefixLength}`, network, prefixLength, size };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  const n = ipv4ToInt(address);
  return n !== undefined && n >= cidr.network && n < cidr.network + cidr.size;
}

/** AWS keeps the first four addresses and the last one of every subnet for itself. */
export function awsReservedReason(cidr: Cidr, address: string): string | undefined {
  const n = ipv4ToInt(address);
  if (n === undefined) return undefined;
  const offset = n - cidr.network;
  if (offset === 0) return 'the network address';
  if (offset === 1) return 'reserved by AWS for the VPC router';
  if (offset === 2) return 'reserved by AWS for the DNS server';
  if (offset === 3) return 'reserved by AWS for future use';
  if (offset === cidr.size - 1) return 'the broadcast address (reserved by AWS)';
  return undefined;
}
