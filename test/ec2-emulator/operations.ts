// The EC2 actions the emulator implements, by their wire name.
import { assignPrivateIpAddresses, describeNetworkInterfaces, unassignPrivateIpAddresses } from './network-interface-operations.js';
import { stopInstances } from './instance-operations.js';
import type { Ec2Operation } from './operation.js';
import { createRoute, describeRouteTables, replaceRoute } from './route-table-operations.js';

export const operations: Readonly<Record<string, Ec2Operation>> = {
  AssignPrivateIpAddresses: assignPrivateIpAddresses,
  UnassignPrivateIpAddresses: unassignPrivateIpAddresses,
  DescribeNetworkInterfaces: describeNetworkInterfaces,
  CreateRoute: createRoute,
  ReplaceRoute: replaceRoute,
  DescribeRouteTables: describeRouteTables,
  StopInstances: stopInstances,
};

/** Actions that change state (and so can lose their response after taking effect). */
export const mutatingActions: ReadonlySet<string> = new Set(['AssignPrivateIpAddresses', 'UnassignPrivateIpAddresses', 'CreateRoute', 'ReplaceRoute', 'StopInstances']);
