// The emulated slice of a VPC: VPCs, subnets, network interfaces (ENIs) and route tables.
// A snapshot is immutable; every mutation produces a new one, which is what lets the store keep a
// history and serve stale describes, a lagging data plane and a lagging IMDS from the same data.

import { cidrContains, parseCidr, parseIpv4 } from './ipv4.js';

export type Tags = Readonly<Record<string, string>>;

export interface Vpc {
  readonly id: string;
  readonly cidrBlock: string;
}

export interface Subnet {
  readonly id: string;
  readonly vpcId: string;
  readonly cidrBlock: string;
  readonly availabilityZone: string;
}

export interface NetworkInterface {
  readonly id: string;
  readonly subnetId: string;
  readonly macAddress: string;
  /** The primary private address: fixed for the life of the ENI, never reassignable. */
  readonly privateIpAddress: string;
  /** Secondary private addresses in the order they were assigned (the VIP lives here). */
  readonly secondaryPrivateIpAddresses: readonly string[];
  /** Instance the ENI is attached to; undefined for a detached ENI (status "available"). */
  readonly instanceId: string | undefined;
  readonly attachmentId: string | undefined;
  /** ISO 8601 time the ENI was attached (the emulator's start for configured ENIs); undefined when detached. */
  readonly attachTime: string | undefined;
  readonly deviceIndex: number;
  readonly sourceDestCheck: boolean;
  readonly description: string;
  readonly tags: Tags;
  /** Per-ENI limit on private IPv4 addresses (primary included); depends on the instance type in AWS. */
  readonly ipv4AddressesMax: number;
}

export type RouteOrigin = 'CreateRouteTable' | 'CreateRoute' | 'EnableVgwRoutePropagation';

export interface Route {
  readonly destinationCidrBlock: string;
  readonly networkInterfaceId?: string;
  readonly gatewayId?: string;
  readonly origin: RouteOrigin;
}

export interface RouteTable {
  readonly id: string;
  readonly vpcId: string;
  readonly routes: readonly Route[];
  readonly tags: Tags;
  /** Subnets explicitly associated with this table (shown in associationSet). */
  readonly subnetIds: readonly string[];
  readonly main: boolean;
}

/** EC2's instance states with their codes (the low byte of the state code). */
export const instanceStateCodes = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 } as const;
export type InstanceStateName = keyof typeof instanceStateCodes;

/** An instance: only what StopInstances needs (its state, and its tags for IAM conditions). */
export interface Instance {
  readonly id: string;
  readonly state: InstanceStateName;
  readonly tags: Tags;
}

export interface Ec2Snapshot {
  readonly region: string;
  readonly accountId: string;
  readonly vpcs: readonly Vpc[];
  readonly subnets: readonly Subnet[];
  readonly networkInterfaces: readonly NetworkInterface[];
  readonly routeTables: readonly RouteTable[];
  /** The instances (configured, and every instance an ENI is attached to); absent: those of the ENIs, running. */
  readonly instances?: readonly Instance[];
}

/** An instance of the snapshot: listed, or known from an attached ENI (then running, untagged). */
export function findInstance(s: Ec2Snapshot, id: string): Instance | undefined {
  const listed = s.instances?.find((i) => i.id === id);
  if (listed) return listed;
  return s.networkInterfaces.some((eni) => eni.instanceId === id) ? { id, state: 'running', tags: {} } : undefined;
}

/** Returns a copy of `s` with the instance's state set. */
export function withInstanceState(s: Ec2Snapshot, id: string, state: InstanceStateName): Ec2Snapshot {
  const found = findInstance(s, id);
  if (!found) return s;
  const others = (s.instances ?? []).filter((i) => i.id !== id);
  return { ...s, instances: [...others, { ...found, state }] };
}

export function findNetworkInterface(s: Ec2Snapshot, id: string): NetworkInterface | undefined {
  return s.networkInterfaces.find((eni) => eni.id === id);
}

export function findSubnet(s: Ec2Snapshot, id: string): Subnet | undefined {
  return s.subnets.find((subnet) => subnet.id === id);
}

export function findVpc(s: Ec2Snapshot, id: string): Vpc | undefined {
  return s.vpcs.find((vpc) => vpc.id === id);
}

export function findRouteTable(s: Ec2Snapshot, id: string): RouteTable | undefined {
  return s.routeTables.find((table) => table.id === id);
}

/** Every private address of an ENI, primary first (the order IMDS local-ipv4s uses). */
export function privateAddressesOf(eni: NetworkInterface): string[] {
  return [eni.privateIpAddress, ...eni.secondaryPrivateIpAddresses];
}

/** The ENI holding `address` (primary or secondary), if any. */
export function holderOfAddress(s: Ec2Snapshot, address: string): NetworkInterface | undefined {
  return s.networkInterfaces.find((eni) => privateAddressesOf(eni).includes(address));
}

/** The instance's ENIs ordered by device index (index 0 is the primary interface). */
export function interfacesOfInstance(s: Ec2Snapshot, instanceId: string): NetworkInterface[] {
  return s.networkInterfaces
    .filter((eni) => eni.instanceId === instanceId)
    .sort((a, b) => a.deviceIndex - b.deviceIndex);
}

/**
 * A route to an ENI is "blackhole" when the ENI is gone or detached: traffic for it is dropped.
 * That is derived, not stored, so it follows attachment changes the way EC2 reports it.
 */
export function routeState(s: Ec2Snapshot, route: Route): 'active' | 'blackhole' {
  if (route.networkInterfaceId === undefined) return 'active';
  const eni = findNetworkInterface(s, route.networkInterfaceId);
  return eni?.instanceId !== undefined ? 'active' : 'blackhole';
}

/** Where a packet for an address goes from a subnet, by the data plane of a snapshot. */
export type Delivery =
  | { readonly to: NetworkInterface; readonly via: string }
  | { readonly dropped: string };

/** The route table of a subnet: the one it is explicitly associated with, else its VPC's main table. */
export function routeTableOfSubnet(s: Ec2Snapshot, subnet: Subnet): RouteTable | undefined {
  const associated = s.routeTables.find((t) => t.subnetIds.includes(subnet.id));
  return associated ?? s.routeTables.find((t) => t.main && t.vpcId === subnet.vpcId);
}

/**
 * Where a packet for `address` sent from `fromSubnetId` is delivered, as VPC routing does it: the
 * subnet's route table, longest prefix first, with the VPC's own CIDR as the implicit local route
 * (which reaches the ENI holding the address). A route to an ENI delivers only when the ENI is
 * attached (else blackhole) and, for an address the ENI does not hold, only when its
 * source/destination check is off: that is what makes route-table mode work, and forgetting it, or
 * one AZ's route table, is the layout's classic mistake, which this reports by name.
 */
export function deliveryOf(s: Ec2Snapshot, address: string, fromSubnetId: string): Delivery {
  const subnet = findSubnet(s, fromSubnetId);
  if (subnet === undefined) return { dropped: `no subnet ${fromSubnetId}` };
  const table = routeTableOfSubnet(s, subnet);
  const ip = parseIpv4(address);
  const vpc = findVpc(s, subnet.vpcId);
  if (ip === undefined || vpc === undefined) return { dropped: `${address} is not routable from ${fromSubnetId}` };
  const candidates: Route[] = [
    ...(table?.routes ?? []),
    { destinationCidrBlock: vpc.cidrBlock, gatewayId: 'local', origin: 'CreateRouteTable' },
  ];
  let best: { route: Route; length: number } | undefined;
  for (const route of candidates) {
    const cidr = parseCidr(route.destinationCidrBlock);
    if (cidr === undefined || !cidrContains(cidr, ip)) continue;
    if (best === undefined || cidr.prefixLength > best.length) best = { route, length: cidr.prefixLength };
  }
  const where = table === undefined ? `from ${fromSubnetId} (no route table)` : `in ${table.id}`;
  if (best === undefined) return { dropped: `no route to ${address} ${where}` };
  const { route } = best;
  if (route.gatewayId === 'local') {
    const holder = holderOfAddress(s, address);
    return holder?.instanceId === undefined ? { dropped: `nobody in ${vpc.id} holds ${address}` } : { to: holder, via: 'local' };
  }
  const eni = route.networkInterfaceId === undefined ? undefined : findNetworkInterface(s, route.networkInterfaceId);
  if (eni === undefined) return { dropped: `${route.destinationCidrBlock} ${where} leads to no network interface` };
  if (routeState(s, route) === 'blackhole') return { dropped: `${route.destinationCidrBlock} ${where} is a blackhole (${eni.id} detached)` };
  if (eni.sourceDestCheck && !privateAddressesOf(eni).includes(address)) {
    return { dropped: `${eni.id} has source/destination check on, so it drops ${address} (${route.destinationCidrBlock} ${where})` };
  }
  return { to: eni, via: `${route.destinationCidrBlock} ${where}` };
}

/** Returns a copy of `s` with one ENI replaced by `update(eni)`. */
export function withNetworkInterface(
  s: Ec2Snapshot,
  id: string,
  update: (eni: NetworkInterface) => NetworkInterface,
): Ec2Snapshot {
  return { ...s, networkInterfaces: s.networkInterfaces.map((eni) => (eni.id === id ? update(eni) : eni)) };
}

/** Returns a copy of `s` with one route table replaced by `update(table)`. */
export function withRouteTable(s: Ec2Snapshot, id: string, update: (table: RouteTable) => RouteTable): Ec2Snapshot {
  return { ...s, routeTables: s.routeTables.map((table) => (table.id === id ? update(table) : table)) };
}

/** Deep-freezes a snapshot so that no holder of an old view can change history by accident. */
export function freezeSnapshot<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) freezeSnapshot(child);
  }
  return value;
}
