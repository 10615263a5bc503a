// The instance metadata tree of one instance, built from an EC2 snapshot: the paths pgvip's VIP
// discovery reads (instance-id, mac, interface-id, local-ipv4s, subnet CIDR, region, ...).
import { imdsIamDocuments, type RoleCredentials } from './credentials.js';
import { findSubnet, findVpc, interfacesOfInstance, privateAddressesOf, type Ec2Snapshot } from './model.js';

/** A directory maps names to files (text) or subdirectories. */
export interface MetadataDirectory {
  readonly [name: string]: string | MetadataDirectory;
}

function hostnameOf(address: string, region: string): string {
  const domain = region === 'us-east-1' ? 'ec2.internal' : `${region}.compute.internal`;
  return `ip-${address.replaceAll('.', '-')}.${domain}`;
}

/**
 * The tree under `/`, or undefined when the snapshot has no ENI attached to the instance. With the
 * instance role's credentials, `meta-data/iam/` holds `info` and `security-credentials/ROLE`, the
 * documents the SDKs' instance-metadata credential providers read.
 */
export function instanceMetadata(
  s: Ec2Snapshot,
  instanceId: string,
  role?: RoleCredentials,
): MetadataDirectory | undefined {
  const enis = interfacesOfInstance(s, instanceId);
  const primary = enis[0];
  if (!primary) return undefined;
  const primarySubnet = findSubnet(s, primary.subnetId)!;
  const macs: Record<string, MetadataDirectory> = {};
  for (const eni of enis) {
    const subnet = findSubnet(s, eni.subnetId)!;
    const vpc = findVpc(s, subnet.vpcId)!;
    macs[eni.macAddress] = {
      'device-number': String(eni.deviceIndex),
      'interface-id': eni.id,
      'local-hostname': hostnameOf(eni.privateIpAddress, s.region),
      'local-ipv4s': privateAddressesOf(eni).join('\n'),
      mac: eni.macAddress,
      'owner-id': s.accountId,
      'subnet-id': subnet.id,
      'subnet-ipv4-cidr-block': subnet.cidrBlock,
      'vpc-id': vpc.id,
      'vpc-ipv4-cidr-block': vpc.cidrBlock,
      'vpc-ipv4-cidr-blocks': vpc.cidrBlock,
    };
  }
  const identityDocument = {
    accountId: s.accountId,
    architecture: 'x86_64',
    availabilityZone: primarySubnet.availabilityZone,
    instanceId,
    privateIp: primary.privateIpAddress,
    region: s.region,
    version: '2017-09-30',
  };
  return {
    latest: {
      'meta-data': {
        hostname: hostnameOf(primary.privateIpAddress, s.region),
        ...(role ? { iam: iamDirectory(role) } : {}),
        'instance-id': instanceId,
        'local-hostname': hostnameOf(primary.privateIpAddress, s.region),
        'local-ipv4': primary.privateIpAddress,
        mac: primary.macAddress,
        network: { interfaces: { macs } },
        placement: { 'availability-zone': primarySubnet.availabilityZone, region: s.region },
      },
      dynamic: { 'instance-identity': { document: JSON.stringify(identityDocument, null, 2) } },
    },
  };
}

function iamDirectory(role: RoleCredentials): MetadataDirectory {
  const documents = imdsIamDocuments(role);
  return { info: documents.info, 'security-credentials': { [role.roleName]: documents.credentials } };
}

/**
 * Resolves a request path in the tree: a file gives its text, a directory its listing (one entry
 * per line, subdirectories with a trailing `/`, as IMDS lists `network/interfaces/macs/`).
 */
export function lookupMetadata(tree: MetadataDirectory, path: string): string | undefined {
  let node: string | MetadataDirectory = tree;
  for (const segment of path.split('/').filter((part) => part !== '')) {
    if (typeof node === 'string' || !Object.hasOwn(node, segment)) return undefined;
    node = node[segment]!;
  }
  if (typeof node === 'string') return node;
  return Object.entries(node)
    .map(([name, child]) => (typeof child === 'string' ? name : `${name}/`))
    .join('\n');
}
