// CreateRoute, ReplaceRoute and DescribeRouteTables: the calls of the cross-AZ route-table VIP mode
// (a /32 route for the VIP pointing at the primary's ENI).
import { idPatterns } from './config.js';
import { Ec2ApiError, invalidValue, networkInterfaceNotFound, routeTableNotFound } from './errors.js';
import { checkFilterNames, matchesFilters, type FilterFields } from './filters.js';
import { normalizeCidr } from './ipv4.js';
import {
  findNetworkInterface,
  findRouteTable,
  findSubnet,
  interfacesOfInstance,
  routeState,
  withRouteTable,
  type Ec2Snapshot,
  type Route,
  type RouteTable,
} from './model.js';
import { tagSet } from './network-interface-operations.js';
import { anyResource, checkIdFormat, ec2Arn, paginate, type Ec2Operation } from './operation.js';
import type { QueryParams } from './query-params.js';
import { el, set, type XmlElement } from './xml.js';

function routeTableId(params: QueryParams): string {
  // EC2 names this one in lower camel case when it is missing ("…the parameter routeTableId").
  const id = params.required('RouteTableId', 'routeTableId');
  checkIdFormat(id, idPatterns.routeTable, 'InvalidRouteTableID.Malformed', 'rtb');
  return id;
}

function routeTableResource(params: QueryParams, control: Ec2Snapshot) {
  const id = routeTableId(params);
  return [{ arn: ec2Arn(control, 'route-table', id), tags: findRouteTable(control, id)?.tags ?? {} }];
}

interface RouteRequest {
  readonly table: RouteTable;
  readonly destinationCidrBlock: string;
  readonly networkInterfaceId: string;
}

/** Reads and checks what CreateRoute and ReplaceRoute share: table, destination and the ENI target. */
function routeRequest(params: QueryParams, s: Ec2Snapshot): RouteRequest {
  const tableId = routeTableId(params);
  const destination = params.string('DestinationCidrBlock');
  if (destination === undefined || destination === '') {
    throw new Ec2ApiError('MissingParameter', 'The request must contain the parameter destinationCidrBlock or destinationIpv6CidrBlock');
  }
  const destinationCidrBlock = normalizeCidr(destination);
  if (destinationCidrBlock === undefined) throw invalidValue('destinationCidrBlock', destination, 'This is not a valid CIDR block.');
  const eniId = params.string('NetworkInterfaceId');
  const instanceId = params.string('InstanceId');
  if (eniId === undefined && instanceId === undefined) {
    throw new Ec2ApiError('MissingParameter', 'The request must contain exactly one of instanceId or networkInterfaceId');
  }
  if (eniId !== undefined && instanceId !== undefined) {
    throw new Ec2ApiError('InvalidParameterCombination', 'The request must contain exactly one of instanceId or networkInterfaceId');
  }
  const table = findRouteTable(s, tableId);
  if (!table) throw routeTableNotFound([tableId]);
  let networkInterfaceId: string;
  if (eniId !== undefined) {
    checkIdFormat(eniId, idPatterns.networkInterface, 'InvalidNetworkInterfaceID.Malformed', 'eni');
    if (!findNetworkInterface(s, eniId)) throw networkInterfaceNotFound([eniId]);
    networkInterfaceId = eniId;
  } else {
    // A route to an instance is a route to its only ENI; EC2 refuses when there are several.
    checkIdFormat(instanceId!, idPatterns.instance, 'InvalidInstanceID.Malformed', 'i');
    const enis = interfacesOfInstance(s, instanceId!);
    if (enis.length === 0) throw new Ec2ApiError('InvalidInstanceID.NotFound', `The instance ID '${instanceId}' does not exist`);
    if (enis.length > 1) {
      throw new Ec2ApiError('InvalidInstanceID', `There are multiple interfaces attached to instance '${instanceId}'. Please specify an interface ID for the operation instead.`);
    }
    networkInterfaceId = enis[0]!.id;
  }
  const eni = findNetworkInterface(s, networkInterfaceId)!;
  if (findSubnet(s, eni.subnetId)?.vpcId !== table.vpcId) {
    throw new Ec2ApiError('InvalidParameterValue', `Route table ${table.id} and network interface ${eni.id} belong to different networks`);
  }
  return { table, destinationCidrBlock, networkInterfaceId };
}

const routeParameters = new Set(['RouteTableId', 'DestinationCidrBlock', 'NetworkInterfaceId', 'InstanceId', 'DryRun']);

export const createRoute: Ec2Operation = {
  parameters: routeParameters,
  supportsDryRun: true,
  resources: routeTableResource,
  execute(params, store) {
    const s = store.control;
    const { table, destinationCidrBlock, networkInterfaceId } = routeRequest(params, s);
    if (table.routes.some((r) => r.destinationCidrBlock === destinationCidrBlock)) {
      throw new Ec2ApiError('RouteAlreadyExists', `The route identified by ${destinationCidrBlock} already exists.`);
    }
    const route: Route = { destinationCidrBlock, networkInterfaceId, origin: 'CreateRoute' };
    store.commit(withRouteTable(s, table.id, (t) => ({ ...t, routes: [...t.routes, route] })), 'CreateRoute');
    return el('return', true);
  },
};

export const replaceRoute: Ec2Operation = {
  parameters: routeParameters,
  supportsDryRun: true,
  resources: routeTableResource,
  execute(params, store) {
    const s = store.control;
    const { table, destinationCidrBlock, networkInterfaceId } = routeRequest(params, s);
    const existing = table.routes.find((r) => r.destinationCidrBlock === destinationCidrBlock);
    if (!existing) {
      throw new Ec2ApiError('InvalidParameterValue', `There is no route defined for '${destinationCidrBlock}' in the route table. Use CreateRoute instead.`);
    }
    if (existing.gatewayId === 'local') {
      throw new Ec2ApiError('InvalidParameterValue', `The local route ${destinationCidrBlock} cannot be replaced by the EC2 emulator.`);
    }
    const route: Route = { destinationCidrBlock, networkInterfaceId, origin: 'CreateRoute' };
    store.commit(
      withRouteTable(s, table.id, (t) => ({ ...t, routes: t.routes.map((r) => (r === existing ? route : r)) })),
      'ReplaceRoute',
    );
    return el('return', true);
  },
};

function instanceIdOfTarget(s: Ec2Snapshot, route: Route): string | undefined {
  if (route.networkInterfaceId === undefined) return undefined;
  return findNetworkInterface(s, route.networkInterfaceId)?.instanceId;
}

function routeTableFilterFields(s: Ec2Snapshot): FilterFields<RouteTable> {
  const fromRoutes = (pick: (r: Route) => string | undefined) => (t: RouteTable) =>
    t.routes.flatMap((r) => pick(r) ?? []);
  return {
    'association.main': (t) => [String(t.main)],
    'association.subnet-id': (t) => t.subnetIds,
    'owner-id': () => [s.accountId],
    'route-table-id': (t) => [t.id],
    'route.destination-cidr-block': fromRoutes((r) => r.destinationCidrBlock),
    'route.gateway-id': fromRoutes((r) => r.gatewayId),
    'route.instance-id': fromRoutes((r) => instanceIdOfTarget(s, r)),
    'route.network-interface-id': fromRoutes((r) => r.networkInterfaceId),
    'route.origin': fromRoutes((r) => r.origin),
    'route.state': fromRoutes((r) => routeState(s, r)),
    'vpc-id': (t) => [t.vpcId],
  };
}

function routeXml(s: Ec2Snapshot, route: Route): XmlElement[] {
  const instanceId = instanceIdOfTarget(s, route);
  return [
    ...el('destinationCidrBlock', route.destinationCidrBlock),
    ...el('gatewayId', route.gatewayId),
    ...el('instanceId', instanceId),
    ...el('instanceOwnerId', instanceId && s.accountId),
    ...el('networkInterfaceId', route.networkInterfaceId),
    ...el('state', routeState(s, route)),
    ...el('origin', route.origin),
  ];
}

function associationXml(table: RouteTable): XmlElement[][] {
  // Association ids are derived from the table id and the association's position, so they are
  // stable across calls (index 00 is the main association).
  const associationId = (index: number) => `rtbassoc-${table.id.slice('rtb-'.length)}${index.toString(16).padStart(2, '0')}`;
  const associated = el('associationState', el('state', 'associated'));
  const main = table.main
    ? [[...el('routeTableAssociationId', associationId(0)), ...el('routeTableId', table.id), ...el('main', true), ...associated]]
    : [];
  const explicit = table.subnetIds.map((subnetId, i) => [
    ...el('routeTableAssociationId', associationId(i + 1)),
    ...el('routeTableId', table.id),
    ...el('subnetId', subnetId),
    ...el('main', false),
    ...associated,
  ]);
  return [...main, ...explicit];
}

function routeTableXml(s: Ec2Snapshot, table: RouteTable): XmlElement[] {
  return [
    ...el('routeTableId', table.id),
    ...el('vpcId', table.vpcId),
    ...el('ownerId', s.accountId),
    ...set('routeSet', table.routes, (route) => routeXml(s, route)),
    ...set('associationSet', associationXml(table), (association) => association),
    ...el('propagatingVgwSet', []),
    ...tagSet(table.tags),
  ];
}

export const describeRouteTables: Ec2Operation = {
  parameters: new Set(['RouteTableId', 'Filter', 'MaxResults', 'NextToken', 'DryRun']),
  supportsDryRun: true,
  resources: () => anyResource,
  execute(params, store) {
    const ids = params.list('RouteTableId');
    for (const id of ids) checkIdFormat(id, idPatterns.routeTable, 'InvalidRouteTableID.Malformed', 'rtb');
    const filters = params.filters();
    const s = store.describeView();
    const fields = routeTableFilterFields(s);
    checkFilterNames(filters, fields);
    const missing = ids.filter((id) => !findRouteTable(s, id));
    if (missing.length > 0) throw routeTableNotFound(missing);
    const selected = s.routeTables
      .filter((t) => ids.length === 0 || ids.includes(t.id))
      .filter((t) => matchesFilters(t, t.tags, filters, fields));
    const { page, nextToken } = paginate(selected, params, { min: 5, max: 100 }, JSON.stringify({ ids, filters }));
    return [...set('routeTableSet', page, (t) => routeTableXml(s, t)), ...el('nextToken', nextToken)];
  },
};
