// Route-table mode (nodes in different AZs): the VIP lies outside the VPC CIDR and every configured
// route table sends VIP/32 to the primary's ENI. ReplaceRoute is the normal move; a table without
// the route gets it with CreateRoute; and if that races with another writer (or with our own earlier
// attempt whose answer was lost) RouteAlreadyExists sends us back to ReplaceRoute. Pointing a route
// that already points at us is a no-op, so the whole move is idempotent.
import { CreateRouteCommand, DescribeRouteTablesCommand, ReplaceRouteCommand, type EC2Client } from './ec2-sdk.js';
import { PgvipError } from '@pgvip/shared';
import type { CloudRouting, CloudView } from './cloud-routing.js';
import type { VipTarget } from './discovery.js';
import { ec2CodeOf, type CallContext, type Ec2Caller } from './ec2-call.js';

/** EC2's answer to ReplaceRoute for a destination the table has no route for. */
function isMissingRoute(err: unknown): boolean {
  return ec2CodeOf(err) === 'InvalidParameterValue' && /no route defined|use CreateRoute/i.test((err as Error).message);
}

export class RouteTableRouting implements CloudRouting {
  readonly #client: EC2Client;
  readonly #caller: Ec2Caller;
  readonly #destination: string;
  readonly #tableIds: readonly string[];

  constructor(options: { client: EC2Client; caller: Ec2Caller; address: string; routeTableIds: readonly string[] }) {
    this.#client = options.client;
    this.#caller = options.caller;
    this.#destination = `${options.address}/32`;
    this.#tableIds = options.routeTableIds;
  }

  async pointAt(target: VipTarget, context: CallContext): Promise<string[]> {
    // All tables at once: a failover waits for the slowest table, not for their sum.
    const results = await Promise.allSettled(
      this.#tableIds.map((tableId) => this.#pointTable(tableId, target, context)),
    );
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ tableId: this.#tableIds[i]!, err: r.reason as unknown }] : []));
    if (failures.length === 0) return results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    const first = failures[0]!.err;
    if (failures.length === 1) throw first;
    // Several tables failed: keep the first one's code (timeouts and denials look alike across tables)
    // and name them all.
    const code = first instanceof PgvipError ? first.code : 'PGVIP_VIP_EC2_FAILED';
    const details = failures.map((f) => `${f.tableId}: ${f.err instanceof PgvipError ? f.err.detail : String(f.err)}`);
    throw new PgvipError(code, `${failures.length} of ${this.#tableIds.length} route tables were not pointed at ${target.eniId}: ${details.join('; ')}`, { cause: first });
  }

  async inspect(target: VipTarget, context: CallContext): Promise<CloudView> {
    const filter = { Name: 'route.destination-cidr-block', Values: [this.#destination] };
    const out = await this.#caller.call(
      'DescribeRouteTables',
      `routes of ${this.#destination}`,
      () => this.#client.send(
        new DescribeRouteTablesCommand({ RouteTableIds: [...this.#tableIds], Filters: [filter] }),
      ),
      context,
    );
    const elsewhere: string[] = [];
    for (const tableId of this.#tableIds) {
      const table = out.RouteTables?.find((t) => t.RouteTableId === tableId);
      const route = table?.Routes?.find((r) => r.DestinationCidrBlock === this.#destination);
      // A blackhole route names our ENI but leads nowhere (the ENI is detached): not routed here.
      if (route?.NetworkInterfaceId === target.eniId && route.State !== 'blackhole') continue;
      const where = route === undefined ? 'no route' : route.State === 'blackhole' ? `${route.NetworkInterfaceId ?? '?'} (blackhole)` : (route.NetworkInterfaceId ?? route.GatewayId ?? route.InstanceId ?? 'another target');
      elsewhere.push(`${tableId} → ${where}`);
    }
    if (elsewhere.length === 0) return { routedHere: true, detail: `${this.#destination} → ${target.eniId} in ${this.#tableIds.join(', ')}` };
    return { routedHere: false, detail: `${this.#destination} is not routed to ${target.eniId}: ${elsewhere.join(', ')}` };
  }

  async #pointTable(tableId: string, target: VipTarget, context: CallContext): Promise<string[]> {
    const tableContext = { ...context, fields: { ...context.fields, routeTableId: tableId } };
    const route = { RouteTableId: tableId, DestinationCidrBlock: this.#destination, NetworkInterfaceId: target.eniId };
    const what = `${this.#destination} in ${tableId} to ${target.eniId}`;
    const replace = () => this.#caller.call('ReplaceRoute', what, () => this.#client.send(new ReplaceRouteCommand(route)), tableContext);
    const ids = (out: { $metadata: { requestId?: string } }) =>
      (out.$metadata.requestId === undefined ? [] : [out.$metadata.requestId]);
    try {
      return ids(await replace());
    } catch (err) {
      if (!isMissingRoute(err)) throw err;
    }
    try {
      return ids(await this.#caller.call('CreateRoute', what, () => this.#client.send(new CreateRouteCommand(route)), tableContext));
    } catch (err) {
      // Someone (perhaps our own attempt whose answer was lost) created it meanwhile: point it at us.
      if (ec2CodeOf(err) !== 'RouteAlreadyExists') throw err;
    }
    return ids(await replace());
  }
}
