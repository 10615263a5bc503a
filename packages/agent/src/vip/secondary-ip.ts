// Secondary-IP mode: the VIP is a secondary private address of the primary's ENI. One call moves
// it — AssignPrivateIpAddresses with AllowReassignment, which takes it off the other ENI — and
// repeating that call when the address is already ours changes nothing, so "already done" and a
// retry after a lost answer both simply succeed.
//
// EC2 acknowledges at once but remaps asynchronously (seconds), and DescribeNetworkInterfaces is
// eventually consistent. So "routed here" needs two witnesses: the API says our ENI holds the VIP,
// and IMDS's local-ipv4s of our ENI (AWS's documented way to confirm a remap) lists it.
import { AssignPrivateIpAddressesCommand, DescribeNetworkInterfacesCommand, type EC2Client } from './ec2-sdk.js';
import type { Logger } from 'pino';
import type { CloudRouting, CloudView } from './cloud-routing.js';
import type { VipTarget } from './discovery.js';
import type { CallContext, Ec2Caller } from './ec2-call.js';
import type { ImdsClient } from './imds.js';

export class SecondaryIpRouting implements CloudRouting {
  readonly #client: EC2Client;
  readonly #caller: Ec2Caller;
  readonly #address: string;
  readonly #imds: ImdsClient | undefined;
  readonly #log: Logger;

  constructor(options: {
    client: EC2Client;
    caller: Ec2Caller;
    address: string;
    imds: ImdsClient | undefined;
    logger: Logger;
  }) {
    this.#client = options.client;
    this.#caller = options.caller;
    this.#address = options.address;
    this.#imds = options.imds;
    this.#log = options.logger;
  }

  async pointAt(target: VipTarget, context: CallContext): Promise<string[]> {
    const input = { NetworkInterfaceId: target.eniId, PrivateIpAddresses: [this.#address], AllowReassignment: true };
    const out = await this.#caller.call(
      'AssignPrivateIpAddresses',
      `VIP ${this.#address} to ${target.eniId}`,
      () => this.#client.send(new AssignPrivateIpAddressesCommand(input)),
      context,
    );
    return out.$metadata.requestId === undefined ? [] : [out.$metadata.requestId];
  }

  async inspect(target: VipTarget, context: CallContext): Promise<CloudView> {
    const filter = { Name: 'addresses.private-ip-address', Values: [this.#address] };
    const out = await this.#caller.call(
      'DescribeNetworkInterfaces',
      `holder of ${this.#address}`,
      () => this.#client.send(new DescribeNetworkInterfacesCommand({ Filters: [filter] })),
      context,
    );
    const holders = (out.NetworkInterfaces ?? []).flatMap(
      (eni) => (eni.NetworkInterfaceId === undefined ? [] : [eni.NetworkInterfaceId]),
    );
    if (!holders.includes(target.eniId)) {
      return { routedHere: false, detail: holders.length === 0 ? `EC2 assigns ${this.#address} to no interface` : `EC2 assigns ${this.#address} to ${holders.join(', ')}` };
    }
    if (target.mac === undefined || this.#imds === undefined) return { routedHere: true, detail: `EC2 assigns ${this.#address} to ${target.eniId}` };
    return this.#confirmWithImds(target, target.mac, this.#imds, context);
  }

  async #confirmWithImds(target: VipTarget, mac: string, imds: ImdsClient, context: CallContext): Promise<CloudView> {
    let local: string[];
    try {
      local = await imds.getLines(`network/interfaces/macs/${mac}/local-ipv4s`);
    } catch (err) {
      // IMDS is the second opinion: without it, the API's answer stands (and the next verify asks again).
      this.#log.warn({ ...context.fields, err }, `IMDS could not confirm ${this.#address} on ${target.eniId}; relying on the EC2 API`);
      return { routedHere: true, detail: `EC2 assigns ${this.#address} to ${target.eniId} (IMDS unavailable)` };
    }
    if (local.includes(this.#address)) return { routedHere: true, detail: `EC2 and IMDS show ${this.#address} on ${target.eniId}` };
    return { routedHere: false, detail: `EC2 assigns ${this.#address} to ${target.eniId} but IMDS does not list it yet (remap in progress)` };
  }
}
