// AssignPrivateIpAddresses, UnassignPrivateIpAddresses and DescribeNetworkInterfaces: the calls of
// the secondary-IP VIP mode.
import { idPatterns } from './config.js';
import { Ec2ApiError, invalidValue, missingParameter, networkInterfaceNotFound } from './errors.js';
import { checkFilterNames, matchesFilters, type FilterFields } from './filters.js';
import { cidrContains, cidrSize, formatIpv4, isReservedInSubnet, parseCidr, parseIpv4 } from './ipv4.js';
import {
  findNetworkInterface,
  findSubnet,
  holderOfAddress,
  privateAddressesOf,
  type Ec2Snapshot,
  type NetworkInterface,
  type Subnet,
} from './model.js';
import { anyResource, checkIdFormat, ec2Arn, paginate, type Ec2Operation } from './operation.js';
import type { QueryParams } from './query-params.js';
import { el, set, type XmlElement } from './xml.js';

function networkInterfaceId(params: QueryParams): string {
  const id = params.required('NetworkInterfaceId');
  checkIdFormat(id, idPatterns.networkInterface, 'InvalidNetworkInterfaceID.Malformed', 'eni');
  return id;
}

function existingInterface(s: Ec2Snapshot, id: string): NetworkInterface {
  const eni = findNetworkInterface(s, id);
  if (!eni) throw networkInterfaceNotFound([id]);
  return eni;
}

function interfaceResource(params: QueryParams, control: Ec2Snapshot) {
  const id = networkInterfaceId(params);
  // Tags of an unknown ENI are empty, so a tag-conditioned policy denies it (IAM runs before the lookup).
  return [{ arn: ec2Arn(control, 'network-interface', id), tags: findNetworkInterface(control, id)?.tags ?? {} }];
}

function subnetOf(s: Ec2Snapshot, eni: NetworkInterface): Subnet {
  return findSubnet(s, eni.subnetId)!;
}

function checkAddressFitsSubnet(address: string, subnet: Subnet): void {
  const n = parseIpv4(address);
  if (n === undefined) throw invalidValue('PrivateIpAddresses', address, 'This is not a valid IPv4 address.');
  const cidr = parseCidr(subnet.cidrBlock)!;
  if (!cidrContains(cidr, n)) {
    throw new Ec2ApiError('InvalidParameterValue', `Address ${address} does not fall within the subnet's address range`);
  }
  if (isReservedInSubnet(cidr, n)) {
    throw new Ec2ApiError('InvalidParameterValue', `Address ${address} is reserved by AWS in subnet ${subnet.id} (${subnet.cidrBlock})`);
  }
}

/** The lowest free, unreserved addresses of the subnet (what EC2 hands out for a count). */
function freeAddresses(s: Ec2Snapshot, subnet: Subnet, count: number): string[] {
  const cidr = parseCidr(subnet.cidrBlock)!;
  const taken = new Set(s.networkInterfaces.flatMap(privateAddressesOf));
  const found: string[] = [];
  for (let offset = 0; offset < cidrSize(cidr) && found.length < count; offset++) {
    const n = cidr.network + offset;
    const address = formatIpv4(n);
    if (!isReservedInSubnet(cidr, n) && !taken.has(address)) found.push(address);
  }
  if (found.length < count) {
    throw new Ec2ApiError('InsufficientFreeAddressesInSubnet', `The specified subnet ${subnet.id} does not have enough free addresses to satisfy the request.`);
  }
  return found;
}

export const assignPrivateIpAddresses: Ec2Operation = {
  parameters: new Set(['NetworkInterfaceId', 'PrivateIpAddress', 'AllowReassignment', 'SecondaryPrivateIpAddressCount']),
  supportsDryRun: false,
  resources: interfaceResource,
  execute(params, store) {
    const id = networkInterfaceId(params);
    const requested = [...new Set(params.list('PrivateIpAddress'))];
    const count = params.integer('SecondaryPrivateIpAddressCount', { min: 1, max: 1000 });
    const allowReassignment = params.boolean('AllowReassignment') ?? false;
    if (requested.length === 0 && count === undefined) throw missingParameter('PrivateIpAddress or SecondaryPrivateIpAddressCount');
    if (requested.length > 0 && count !== undefined) {
      throw new Ec2ApiError('InvalidParameterCombination', 'Specify either PrivateIpAddress or SecondaryPrivateIpAddressCount, not both.');
    }
    const s = store.control;
    const eni = existingInterface(s, id);
    const subnet = subnetOf(s, eni);
    let assigned: string[];
    if (count !== undefined) {
      assigned = freeAddresses(s, subnet, count);
    } else {
      const heldElsewhere: string[] = [];
      for (const address of requested) {
        checkAddressFitsSubnet(address, subnet);
        const holder = holderOfAddress(s, address);
        if (holder !== undefined && holder.id !== eni.id) heldElsewhere.push(address);
        // A primary address is bound to its ENI for life (the emulator's wording: AWS's is not on record).
        if (holder?.privateIpAddress === address && (holder.id === eni.id || allowReassignment)) {
          throw new Ec2ApiError('InvalidParameterValue', `Address ${address} is the primary private IP address of ${holder.id} and cannot be reassigned.`);
        }
      }
      // A secondary address moves only when allowed; EC2 words the refusal this way.
      if (heldElsewhere.length > 0 && !allowReassignment) {
        throw new Ec2ApiError('InvalidParameterValue', `[${heldElsewhere.join(', ')}] assigned, but move is not allowed.`);
      }
      assigned = requested;
    }
    const additions = assigned.filter((a) => !eni.secondaryPrivateIpAddresses.includes(a));
    if (privateAddressesOf(eni).length + additions.length > eni.ipv4AddressesMax) {
      throw new Ec2ApiError('PrivateIpAddressLimitExceeded', 'Number of private addresses will exceed limit.');
    }
    const moved = new Set(additions);
    store.commit(
      {
        ...s,
        networkInterfaces: s.networkInterfaces.map((other) =>
          other.id === eni.id
            ? { ...other, secondaryPrivateIpAddresses: [...other.secondaryPrivateIpAddresses, ...additions] }
            : { ...other, secondaryPrivateIpAddresses: other.secondaryPrivateIpAddresses.filter((a) => !moved.has(a)) },
        ),
      },
      'AssignPrivateIpAddresses',
    );
    return [
      ...el('networkInterfaceId', eni.id),
      ...set('assignedPrivateIpAddressesSet', assigned, (address) => el('privateIpAddress', address)),
      ...el('assignedIpv4PrefixSet', []),
    ];
  },
};

export const unassignPrivateIpAddresses: Ec2Operation = {
  parameters: new Set(['NetworkInterfaceId', 'PrivateIpAddress']),
  supportsDryRun: false,
  resources: interfaceResource,
  execute(params, store) {
    const id = networkInterfaceId(params);
    const addresses = [...new Set(params.list('PrivateIpAddress'))];
    if (addresses.length === 0) throw missingParameter('PrivateIpAddress');
    const s = store.control;
    const eni = existingInterface(s, id);
    for (const address of addresses) {
      if (parseIpv4(address) === undefined) throw invalidValue('PrivateIpAddresses', address, 'This is not a valid IPv4 address.');
      if (address === eni.privateIpAddress) {
        throw new Ec2ApiError('InvalidParameterValue', `The primary private IP address ${address} of ${eni.id} cannot be unassigned.`);
      }
      if (!eni.secondaryPrivateIpAddresses.includes(address)) {
        throw new Ec2ApiError('InvalidParameterValue', `Some of the specified addresses are not assigned to interface ${eni.id}`);
      }
    }
    const removed = new Set(addresses);
    store.commit(
      {
        ...s,
        networkInterfaces: s.networkInterfaces.map((other) =>
          other.id === eni.id
            ? {
                ...other,
                secondaryPrivateIpAddresses: other.secondaryPrivateIpAddresses.filter((a) => !removed.has(a)),
              }
            : other,
        ),
      },
      'UnassignPrivateIpAddresses',
    );
    return el('return', true);
  },
};

function networkInterfaceFilterFields(s: Ec2Snapshot): FilterFields<NetworkInterface> {
  const subnet = (eni: NetworkInterface) => subnetOf(s, eni);
  return {
    'addresses.private-ip-address': (eni) => privateAddressesOf(eni),
    'addresses.primary': (eni) => privateAddressesOf(eni).map((_, i) => String(i === 0)),
    'attachment.attachment-id': (eni) => (eni.attachmentId ? [eni.attachmentId] : []),
    'attachment.device-index': (eni) => (eni.instanceId ? [String(eni.deviceIndex)] : []),
    'attachment.instance-id': (eni) => (eni.instanceId ? [eni.instanceId] : []),
    'attachment.instance-owner-id': (eni) => (eni.instanceId ? [s.accountId] : []),
    'attachment.status': (eni) => (eni.instanceId ? ['attached'] : []),
    'availability-zone': (eni) => [subnet(eni).availabilityZone],
    description: (eni) => [eni.description],
    'mac-address': (eni) => [eni.macAddress],
    'network-interface-id': (eni) => [eni.id],
    'owner-id': () => [s.accountId],
    'private-ip-address': (eni) => [eni.privateIpAddress],
    'source-dest-check': (eni) => [String(eni.sourceDestCheck)],
    status: (eni) => [eni.instanceId ? 'in-use' : 'available'],
    'subnet-id': (eni) => [eni.subnetId],
    'vpc-id': (eni) => [subnet(eni).vpcId],
  };
}

export function tagSet(tags: Readonly<Record<string, string>>): XmlElement[] {
  return set('tagSet', Object.entries(tags), ([key, value]) => [...el('key', key), ...el('value', value)]);
}

function networkInterfaceXml(s: Ec2Snapshot, eni: NetworkInterface): XmlElement[] {
  const subnet = subnetOf(s, eni);
  return [
    ...el('networkInterfaceId', eni.id),
    ...el('subnetId', eni.subnetId),
    ...el('vpcId', subnet.vpcId),
    ...el('availabilityZone', subnet.availabilityZone),
    ...el('description', eni.description),
    ...el('ownerId', s.accountId),
    ...el('requesterManaged', false),
    ...el('status', eni.instanceId ? 'in-use' : 'available'),
    ...el('macAddress', eni.macAddress),
    ...el('privateIpAddress', eni.privateIpAddress),
    ...el('sourceDestCheck', eni.sourceDestCheck),
    ...el('groupSet', []),
    ...(eni.instanceId
      ? el('attachment', [
          ...el('attachmentId', eni.attachmentId),
          ...el('instanceId', eni.instanceId),
          ...el('instanceOwnerId', s.accountId),
          ...el('deviceIndex', eni.deviceIndex),
          ...el('networkCardIndex', 0),
          ...el('status', 'attached'),
          ...el('attachTime', eni.attachTime),
          ...el('deleteOnTermination', eni.deviceIndex === 0),
        ])
      : []),
    ...tagSet(eni.tags),
    ...set('privateIpAddressesSet', privateAddressesOf(eni), (address) => [
      ...el('privateIpAddress', address),
      ...el('primary', address === eni.privateIpAddress),
    ]),
    ...el('ipv6AddressesSet', []),
    ...el('interfaceType', 'interface'),
  ];
}

export const describeNetworkInterfaces: Ec2Operation = {
  parameters: new Set(['NetworkInterfaceId', 'Filter', 'MaxResults', 'NextToken', 'DryRun']),
  supportsDryRun: true,
  resources: () => anyResource,
  execute(params, store) {
    const ids = params.list('NetworkInterfaceId');
    for (const id of ids) checkIdFormat(id, idPatterns.networkInterface, 'InvalidNetworkInterfaceID.Malformed', 'eni');
    if (ids.length > 0 && params.string('MaxResults') !== undefined) {
      throw new Ec2ApiError('InvalidParameterCombination', 'The parameter NetworkInterfaceIds cannot be used with the parameter MaxResults');
    }
    const filters = params.filters();
    // Describes are eventually consistent: they read the (possibly stale) describe view.
    const s = store.describeView();
    const fields = networkInterfaceFilterFields(s);
    checkFilterNames(filters, fields);
    const missing = ids.filter((id) => !findNetworkInterface(s, id));
    if (missing.length > 0) throw networkInterfaceNotFound(missing);
    const selected = s.networkInterfaces
      .filter((eni) => ids.length === 0 || ids.includes(eni.id))
      .filter((eni) => matchesFilters(eni, eni.tags, filters, fields));
    const { page, nextToken } = paginate(selected, params, { min: 5, max: 1000 }, JSON.stringify({ ids, filters }));
    return [...set('networkInterfaceSet', page, (eni) => networkInterfaceXml(s, eni)), ...el('nextToken', nextToken)];
  },
};
