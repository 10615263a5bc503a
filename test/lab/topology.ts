// The lab's fixed shape: which "hosts" exist, their addresses, ports and EC2 identities.
//
// Every address is in 198.18.0.0/15 (RFC 2544's benchmarking range): the lab never sends a packet
// anywhere else. Each host is a network namespace with ONE interface (eth0) whose other end lives in
// the "vpc" router namespace; there is no shared L2 segment, exactly as in a VPC, where every packet
// goes through the fabric and the fabric alone decides which instance an address reaches.
//
//   secondary-ip mode: db-a and db-b share the subnet 198.18.1.0/24; the VIP 198.18.1.100 is an EC2
//     secondary address of whichever ENI holds it.
//   route-table mode: db-b lives in another subnet (another AZ); the VIP 198.19.0.10 lies outside
//     every subnet and reaches the ENI its /32 route in the route table points at.
//
// A three-node lab (`topologyFor(mode, 3)`, etcd backend only) adds db-c: 198.18.1.13 in secondary-ip
// mode, 198.18.5.13 in a third subnet (a third AZ) in route-table mode. A two-node lab builds nothing of
// db-c; its addresses and EC2 identity are only reserved, so that every record keyed by node stays total.

export const labPrefix = 'pgvip-lab-';
export const clusterName = 'lab';

/** Every database host the lab knows; a lab builds the first `nodes` of them (Topology.dbNodes). */
export const allDbNodes = ['db-a', 'db-b', 'db-c'] as const;
export type DbNode = (typeof allDbNodes)[number];
/** The database hosts of a two-node lab (the default, the baseline's and every anchor's). */
export const dbNodes = ['db-a', 'db-b'] as const;
export type TwoNodeDb = (typeof dbNodes)[number];
/** The hosts of a two-node lab. */
export const hostNames = ['db-a', 'db-b', 'witness', 'client'] as const;
export type HostName = DbNode | 'witness' | 'client';
export type VipMode = 'secondary-ip' | 'route-table';
/** How many database hosts a lab runs: two (either backend), or three (etcd only). */
export type LabNodeCount = 2 | 3;

export function isDbNode(name: string): name is DbNode {
  return (allDbNodes as readonly string[]).includes(name);
}

/** The other node of a two-node lab. */
export function otherNode(node: DbNode): TwoNodeDb {
  if (node === 'db-c') throw new Error('otherNode() is for two-node labs: db-c has two other nodes (use Topology.dbNodes)');
  return node === 'db-a' ? 'db-b' : 'db-a';
}

/** The namespace of a host (or of the router). */
export function nsOf(host: HostName | 'vpc'): string {
  return `${labPrefix}${host}`;
}

export interface HostNet {
  readonly name: HostName;
  readonly ns: string;
  /** The host's own address on eth0. */
  readonly address: string;
  /** Prefix length of the host's subnet (what EC2 would put on the interface). */
  readonly prefixLength: number;
  readonly subnetCidr: string;
  /** The router's address on this host's link: the default gateway. */
  readonly gateway: string;
  /** Name of the router-side interface of this host's link (inside the vpc namespace). */
  readonly routerDevice: string;
}

export interface Ec2Identity {
  readonly instanceId: string;
  readonly eniId: string;
  readonly subnetId: string;
}

export interface Topology {
  readonly vipMode: VipMode;
  /** The database hosts this lab builds, in config order (db-a, db-b[, db-c]). */
  readonly dbNodes: readonly DbNode[];
  /** Every host this lab builds (its database hosts, the witness host and the client). */
  readonly hostNames: readonly HostName[];
  readonly hosts: Readonly<Record<HostName, HostNet>>;
  readonly router: { readonly ns: string; readonly serviceAddress: string };
  readonly vip: { readonly address: string; readonly prefixLength: number };
  readonly vpcCidr: string;
  readonly region: string;
  readonly accountId: string;
  readonly ec2: Readonly<Record<DbNode, Ec2Identity>>;
  readonly routeTableId: string;
  readonly ports: {
    readonly ec2: number;
    readonly imds: Readonly<Record<DbNode, number>>;
    readonly agent: number;
    readonly witness: number;
    readonly operator: number;
    readonly postgres: number;
  };
}

function host(name: HostName, address: string, subnet: number, routerDevice = name): HostNet {
  return { name, ns: nsOf(name), address, prefixLength: 24, subnetCidr: `198.18.${subnet}.0/24`, gateway: `198.18.${subnet}.1`, routerDevice };
}

export function topologyFor(vipMode: VipMode = 'secondary-ip', nodes: LabNodeCount = 2): Topology {
  const dbBSubnet = vipMode === 'secondary-ip' ? 1 : 4;
  const dbCSubnet = vipMode === 'secondary-ip' ? 1 : 5;
  const built: readonly DbNode[] = nodes === 3 ? allDbNodes : dbNodes;
  return {
    vipMode,
    dbNodes: built,
    hostNames: [...built, 'witness', 'client'],
    hosts: {
      'db-a': host('db-a', '198.18.1.11', 1),
      'db-b': host('db-b', `198.18.${dbBSubnet}.12`, dbBSubnet),
      'db-c': host('db-c', `198.18.${dbCSubnet}.13`, dbCSubnet),
      witness: host('witness', '198.18.2.20', 2),
      client: host('client', '198.18.3.30', 3),
    },
    // The EC2 API and every instance's IMDS answer on this address of the router: the "AWS side".
    router: { ns: nsOf('vpc'), serviceAddress: '198.18.0.1' },
    vip: vipMode === 'secondary-ip' ? { address: '198.18.1.100', prefixLength: 24 } : { address: '198.19.0.10', prefixLength: 32 },
    vpcCidr: '198.18.0.0/16',
    region: 'eu-west-1',
    accountId: '123456789012',
    ec2: {
      'db-a': { instanceId: 'i-0db0a0001', eniId: 'eni-0db0a0001', subnetId: 'subnet-0db00001' },
      'db-b': { instanceId: 'i-0db0b0002', eniId: 'eni-0db0b0002', subnetId: vipMode === 'secondary-ip' ? 'subnet-0db00001' : 'subnet-0db00004' },
      'db-c': { instanceId: 'i-0db0c0003', eniId: 'eni-0db0c0003', subnetId: vipMode === 'secondary-ip' ? 'subnet-0db00001' : 'subnet-0db00005' },
    },
    routeTableId: 'rtb-0ab000001',
    ports: { ec2: 80, imds: { 'db-a': 8101, 'db-b': 8102, 'db-c': 8103 }, agent: 8008, witness: 8009, operator: 8010, postgres: 5432 },
  };
}

export function ec2Endpoint(t: Topology): string {
  return `http://${t.router.serviceAddress}:${t.ports.ec2}`;
}

export function imdsEndpoint(t: Topology, node: DbNode): string {
  return `http://${t.router.serviceAddress}:${t.ports.imds[node]}`;
}

/** The node whose ENI is `eniId`, if it is one of the database nodes. */
export function nodeOfEni(t: Topology, eniId: string | undefined): DbNode | null {
  return t.dbNodes.find((n) => t.ec2[n].eniId === eniId) ?? null;
}
