// Who this node is in EC2, for the VIP: its region, the ENI that receives the VIP, the MAC under
// which IMDS lists that ENI, and the prefix length for `ip addr add`. With discovery "config" every
// value comes from the config and IMDS is never contacted; with "imds" each value the config gives
// wins and IMDS fills in the rest.
import { PgvipError, type NodeConfig, type VipConfig } from '@pgvip/shared';
import type { ImdsClient } from './imds.js';

/** This node's EC2 identity as far as the VIP needs it. */
export interface VipTarget {
  readonly region: string;
  /** The ENI that receives the VIP (secondary-ip) or that the /32 routes point at (route-table). */
  readonly eniId: string;
  readonly instanceId: string | undefined;
  /** The ENI's MAC as IMDS lists it; undefined with discovery "config" (verify then asks EC2 alone). */
  readonly mac: string | undefined;
  /** For `ip addr add`: the subnet's prefix (secondary-ip) or 32 (route-table). */
  readonly prefixLength: number;
}

/** This node's configured EC2 identity (nodes[self].vip in the cluster config). */
export type NodeVipConfig = NonNullable<NodeConfig['vip']>;

export async function discoverVipTarget(
  vip: VipConfig,
  self: NodeVipConfig | undefined,
  imds: ImdsClient | undefined,
): Promise<VipTarget> {
  if (vip.discovery === 'config') return configuredTarget(vip, self);
  if (!imds) throw new PgvipError('PGVIP_VIP_IMDS', 'vip.discovery is "imds" but no IMDS client was given');
  const macPath = (mac: string, item: string) => `network/interfaces/macs/${mac}/${item}`;
  const [region, instanceId, eni] = await Promise.all([
    vip.region ?? imds.get('placement/region'),
    self?.instanceId ?? imds.get('instance-id'),
    self?.eniId === undefined ? primaryInterface(imds) : attachedInterface(imds, self.eniId),
  ]);
  const prefixLength = vip.mode === 'route-table' ? 32 : (vip.prefixLength ?? prefixOf(await imds.get(macPath(eni.mac, 'subnet-ipv4-cidr-block'))));
  return { region, eniId: eni.eniId, instanceId, mac: eni.mac, prefixLength };
}

function configuredTarget(vip: VipConfig, self: NodeVipConfig | undefined): VipTarget {
  // The config schema requires these with discovery "config"; a hand-built config may still lack them.
  const missing = [
    vip.region === undefined && 'vip.region',
    self?.eniId === undefined && "this node's vip.eniId",
    vip.mode === 'secondary-ip' && vip.prefixLength === undefined && 'vip.prefixLength',
  ].filter((m): m is string => m !== false);
  if (missing.length > 0) throw new PgvipError('PGVIP_CONFIG_INVALID', `vip.discovery is "config" but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`);
  return {
    region: vip.region!,
    eniId: self!.eniId!,
    instanceId: self?.instanceId,
    mac: undefined,
    prefixLength: vip.mode === 'route-table' ? 32 : vip.prefixLength!,
  };
}

interface DiscoveredInterface {
  readonly eniId: string;
  readonly mac: string;
}

/** The instance's primary ENI (device 0): the one `mac` names. */
async function primaryInterface(imds: ImdsClient): Promise<DiscoveredInterface> {
  const mac = await imds.get('mac');
  return { mac, eniId: await imds.get(`network/interfaces/macs/${mac}/interface-id`) };
}

/** The configured ENI's MAC, found among the instance's interfaces (IMDS indexes them by MAC). */
async function attachedInterface(imds: ImdsClient, eniId: string): Promise<DiscoveredInterface> {
  const macs = (await imds.getLines('network/interfaces/macs/')).map((entry) => entry.replace(/\/$/, ''));
  const ids = await Promise.all(macs.map((mac) => imds.get(`network/interfaces/macs/${mac}/interface-id`)));
  const index = ids.indexOf(eniId);
  if (index < 0) {
    throw new PgvipError('PGVIP_VIP_NOT_FOUND', `${eniId} (this node's vip.eniId) is not attached to this instance; IMDS lists ${ids.join(', ') || 'no interface'}`);
  }
  return { eniId, mac: macs[index]! };
}

function prefixOf(cidr: string): number {
  const prefix = Number(/^\d{1,3}(?:\.\d{1,3}){3}\/(\d{1,2})$/.exec(cidr)?.[1]);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new PgvipError('PGVIP_VIP_IMDS', `IMDS gave a subnet CIDR that is not IPv4: ${JSON.stringify(cidr)}`);
  return prefix;
}
