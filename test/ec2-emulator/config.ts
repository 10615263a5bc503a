// The emulator's configuration: the VPC slice it starts with, its delays, faults and IAM policies.
// One zod schema serves the TypeScript API and the config file (JSON or YAML); cross-references
// (an ENI's subnet, an address inside its subnet, ...) are checked too, and every problem is
// reported with its path, so a typo in a lab config fails loudly instead of emulating nonsense.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { faultPlanSchema } from './faults.js';
import { iamPolicySchema, type IamPolicy } from './iam.js';
import { cidrContains, cidrWithin, isReservedInSubnet, parseCidr, parseIpv4 } from './ipv4.js';
import type { Ec2Snapshot, Instance, NetworkInterface, Route, RouteTable } from './model.js';

// Id formats as EC2 issues them (hex suffix); the API rejects other spellings as Malformed, so the
// config must not contain ids the emulator itself would reject.
const id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}-[0-9a-f]{1,17}$`), `expected an id like ${prefix}-0123abcd (hex digits)`);
export const idPatterns = {
  networkInterface: /^eni-[0-9a-f]{1,17}$/,
  routeTable: /^rtb-[0-9a-f]{1,17}$/,
  instance: /^i-[0-9a-f]{1,17}$/,
} as const;

const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, 'expected an IPv4 address like 198.18.1.10');
const cidrBlock = z.string().refine((s) => parseCidr(s, { strict: true }) !== undefined, 'expected a CIDR block with host bits clear, like 198.18.1.0/24');
const tags = z.record(z.string(), z.string()).default({});
const durationMs = z.number().int().nonnegative();

/** A change of delays at runtime (admin API and TS API); absent fields keep their value. */
export const timingUpdateSchema = z.strictObject({
  remapDelayMs: durationMs.optional(),
  describeStaleMs: durationMs.optional(),
  imdsLagMs: durationMs.optional(),
});

const networkInterfaceSchema = z.strictObject({
  id: id('eni'),
  subnetId: id('subnet'),
  /** Omit for a detached ENI. */
  instanceId: id('i').optional(),
  deviceIndex: z.number().int().nonnegative().default(0),
  /** When the ENI was attached (ISO 8601); default: when the emulator started. */
  attachTime: z.iso.datetime().optional(),
  privateIpAddress: ipv4,
  secondaryPrivateIpAddresses: z.array(ipv4).default([]),
  macAddress: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'expected a lower-case MAC like 02:00:00:00:00:01').optional(),
  sourceDestCheck: z.boolean().default(true),
  description: z.string().default(''),
  tags,
  /** Private IPv4 addresses per ENI, primary included (10 on an m5.large / t3.large). */
  ipv4AddressesMax: z.number().int().min(1).default(10),
});

const routeSchema = z
  .strictObject({
    destinationCidrBlock: cidrBlock,
    networkInterfaceId: id('eni').optional(),
    gatewayId: z.string().regex(/^(local|igw-[0-9a-f]+|vgw-[0-9a-f]+)$/, 'expected local, igw-... or vgw-...').optional(),
  })
  .refine((r) => (r.networkInterfaceId === undefined) !== (r.gatewayId === undefined), 'a route needs exactly one target: networkInterfaceId or gatewayId');

const routeTableSchema = z.strictObject({
  id: id('rtb'),
  vpcId: id('vpc'),
  /** Routes besides the VPC's local route, which every table gets automatically. */
  routes: z.array(routeSchema).default([]),
  subnetIds: z.array(id('subnet')).default([]),
  main: z.boolean().default(false),
  tags,
});

/** Where a principal's permissions come from: a policy file (relative to the config file) or the policy inline. */
const policySource = {
  /** Path to an IAM policy JSON file (relative to the config file). */
  policyFile: z.string().min(1).optional(),
  policy: iamPolicySchema.optional(),
};
const onePolicySource = [(k: { policyFile?: string | undefined; policy?: unknown }) => (k.policyFile === undefined) !== (k.policy === undefined), 'give exactly one of policyFile and policy'] as const;

const accessKeySchema = z
  .strictObject({
    /** The key's secret: every request signed with the key id is verified against it (SigV4), as EC2 does. */
    secretAccessKey: z.string().min(1, 'give the secret the clients sign with'),
    /** A user name or a full principal ARN, shown in UnauthorizedOperation messages. */
    user: z.string().min(1).optional(),
    ...policySource,
  })
  .refine(...onePolicySource);

/**
 * An IAM role attached to instances through an instance profile (of the same name): IMDS hands them
 * its temporary credentials.
 */
const instanceRoleSchema = z
  .strictObject({
    instances: z.array(id('i')).min(1),
    ...policySource,
  })
  .refine(...onePolicySource);

export const emulatorConfigSchema = z.strictObject({
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected a region like us-east-1').default('us-east-1'),
  accountId: z.string().regex(/^\d{12}$/, 'expected a 12-digit account id').default('123456789012'),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  vpcs: z.array(z.strictObject({ id: id('vpc'), cidrBlock })).min(1),
  subnets: z.array(z.strictObject({ id: id('subnet'), vpcId: id('vpc'), cidrBlock, availabilityZone: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'expected an availability zone like us-east-1a') })).min(1),
  networkInterfaces: z.array(networkInterfaceSchema).default([]),
  routeTables: z.array(routeTableSchema).default([]),
  /** Instances with tags or a state of their own; every instance an ENI names exists anyway (running, untagged). */
  instances: z
    .array(z.strictObject({ id: id('i'), state: z.enum(['running', 'stopped']).default('running'), tags }))
    .default([]),
  timing: z
    .strictObject({
      remapDelayMs: durationMs.default(0),
      describeStaleMs: durationMs.default(0),
      imdsLagMs: durationMs.default(0),
    })
    .default({ remapDelayMs: 0, describeStaleMs: 0, imdsLagMs: 0 }),
  faults: faultPlanSchema.default({ rules: [] }),
  /** When present, every request must be signed with one of these access keys and is checked against its policy. */
  iam: z
    .strictObject({
      accessKeys: z.record(z.string().regex(/^[A-Z0-9]{16,128}$/, 'expected an access key id like AKIAEXAMPLE12345'), accessKeySchema).default({}),
      /**
       * Role name → its policy and the instances it is attached to (IMDS serves them the role's
       * temporary credentials).
       */
      roles: z.record(z.string().regex(/^[\w+=,.@-]{1,64}$/, 'expected an IAM role name (letters, digits and +=,.@_-, at most 64)'), instanceRoleSchema).default({}),
      /** Lifetime of the temporary credentials IMDS hands out (AWS: about 6 h; shorter to test expiry and rotation). */
      roleCredentialsTtlSeconds: z.number().int().min(1).max(43_200).default(21_600),
    })
    .optional(),
  /** IMDS servers to start with the emulator (the CLI's --imds-port adds one). */
  imds: z
    .array(z.strictObject({ instanceId: id('i'), port: z.number().int().min(0).max(65535), host: z.string().default('127.0.0.1'), tokensRequired: z.boolean().default(true) }))
    .default([]),
});

export type Ec2EmulatorConfig = z.input<typeof emulatorConfigSchema>;
export type ParsedEmulatorConfig = z.output<typeof emulatorConfigSchema>;

type Issue = { message: string; path: Array<string | number> };

function duplicates(values: readonly string[]): string[] {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

/**
 * Cross-reference checks. They run only on a config whose fields are each valid (a separate step,
 * not a zod refinement, because zod runs refinements even after non-fatal field errors).
 */
function referenceIssues(c: ParsedEmulatorConfig): Issue[] {
  const issues: Issue[] = [];
  const issue = (found: Issue) => issues.push(found);
  for (const [name, list] of [['vpcs', c.vpcs], ['subnets', c.subnets], ['networkInterfaces', c.networkInterfaces], ['routeTables', c.routeTables]] as const) {
    for (const dup of duplicates(list.map((x) => x.id))) issue({ message: `duplicate id ${dup}`, path: [name] });
  }
  const vpcs = new Map(c.vpcs.map((v) => [v.id, v]));
  const subnets = new Map(c.subnets.map((s) => [s.id, s]));
  c.subnets.forEach((s, i) => {
    const vpc = vpcs.get(s.vpcId);
    if (!vpc) issue({ message: `unknown VPC ${s.vpcId}`, path: ['subnets', i, 'vpcId'] });
    else if (!cidrWithin(parseCidr(s.cidrBlock)!, parseCidr(vpc.cidrBlock)!)) {
      issue({ message: `${s.cidrBlock} is not inside the VPC's ${vpc.cidrBlock}`, path: ['subnets', i, 'cidrBlock'] });
    }
  });
  const owners = new Map<string, string>();
  const slots = new Set<string>();
  c.networkInterfaces.forEach((eni, i) => {
    const subnet = subnets.get(eni.subnetId);
    if (!subnet) issue({ message: `unknown subnet ${eni.subnetId}`, path: ['networkInterfaces', i, 'subnetId'] });
    const addresses = [eni.privateIpAddress, ...eni.secondaryPrivateIpAddresses];
    addresses.forEach((address, j) => {
      const where = j === 0 ? ['networkInterfaces', i, 'privateIpAddress'] : ['networkInterfaces', i, 'secondaryPrivateIpAddresses', j - 1];
      const cidr = subnet && parseCidr(subnet.cidrBlock)!;
      const n = parseIpv4(address)!;
      if (cidr && !cidrContains(cidr, n)) issue({ message: `${address} is outside subnet ${subnet.id} (${subnet.cidrBlock})`, path: where });
      else if (cidr && isReservedInSubnet(cidr, n)) issue({ message: `${address} is reserved by EC2 in ${subnet.cidrBlock}`, path: where });
      const owner = owners.get(address);
      if (owner) issue({ message: `${address} is already held by ${owner}`, path: where });
      owners.set(address, eni.id);
    });
    if (addresses.length > eni.ipv4AddressesMax) {
      issue({ message: `${addresses.length} addresses exceed ipv4AddressesMax ${eni.ipv4AddressesMax}`, path: ['networkInterfaces', i] });
    }
    if (eni.instanceId) {
      const slot = `${eni.instanceId}#${eni.deviceIndex}`;
      if (slots.has(slot)) issue({ message: `instance ${eni.instanceId} already has an ENI at device index ${eni.deviceIndex}`, path: ['networkInterfaces', i, 'deviceIndex'] });
      slots.add(slot);
    }
  });
  for (const dup of duplicates(c.networkInterfaces.flatMap((e) => (e.macAddress ? [e.macAddress] : [])))) {
    issue({ message: `duplicate MAC address ${dup}`, path: ['networkInterfaces'] });
  }
  const enis = new Map(c.networkInterfaces.map((e) => [e.id, e]));
  c.routeTables.forEach((table, i) => {
    if (!vpcs.has(table.vpcId)) issue({ message: `unknown VPC ${table.vpcId}`, path: ['routeTables', i, 'vpcId'] });
    for (const dup of duplicates(table.routes.map((r) => r.destinationCidrBlock))) {
      issue({ message: `two routes for ${dup}`, path: ['routeTables', i, 'routes'] });
    }
    table.routes.forEach((route, j) => {
      if (route.networkInterfaceId === undefined) return;
      const eni = enis.get(route.networkInterfaceId);
      if (!eni) issue({ message: `unknown network interface ${route.networkInterfaceId}`, path: ['routeTables', i, 'routes', j, 'networkInterfaceId'] });
      else if (subnets.get(eni.subnetId)?.vpcId !== table.vpcId) {
        issue({ message: `${eni.id} is not in ${table.vpcId}`, path: ['routeTables', i, 'routes', j, 'networkInterfaceId'] });
      }
    });
    table.subnetIds.forEach((subnetId, j) => {
      if (subnets.get(subnetId)?.vpcId !== table.vpcId) issue({ message: `subnet ${subnetId} is not in ${table.vpcId}`, path: ['routeTables', i, 'subnetIds', j] });
    });
  });
  const instances = new Set(c.networkInterfaces.flatMap((e) => (e.instanceId ? [e.instanceId] : [])));
  const roleOf = new Map<string, string>();
  for (const [role, { instances: attached }] of Object.entries(c.iam?.roles ?? {})) {
    attached.forEach((instanceId, j) => {
      const where = ['iam', 'roles', role, 'instances', j];
      if (!instances.has(instanceId)) issue({ message: `no network interface is attached to ${instanceId}`, path: where });
      // An instance has at most one instance profile, and a profile one role.
      const other = roleOf.get(instanceId);
      if (other !== undefined) issue({ message: `${instanceId} already has the role ${other}`, path: where });
      roleOf.set(instanceId, role);
    });
  }
  return issues;
}

export class EmulatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmulatorConfigError';
  }
}

/** Who a request is made by, and what it may do. */
export interface IamPrincipal {
  /** `arn:aws:iam::ACCOUNT:user/NAME`, or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/i-…` for an instance role. */
  readonly arn: string;
  readonly policies: readonly IamPolicy[];
}

export interface StaticAccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly principal: IamPrincipal;
}

export interface InstanceRole {
  readonly roleName: string;
  readonly instanceIds: readonly string[];
  readonly policies: readonly IamPolicy[];
}

export interface ResolvedIam {
  readonly accessKeys: ReadonlyMap<string, StaticAccessKey>;
  readonly roles: readonly InstanceRole[];
  readonly roleCredentialsTtlSeconds: number;
}

export interface ResolvedEmulatorConfig extends Omit<ParsedEmulatorConfig, 'iam'> {
  /** Undefined when IAM is not enforced (then nothing is signed or checked). */
  readonly iam: ResolvedIam | undefined;
}

function readPolicyFile(file: string, where: string): IamPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new EmulatorConfigError(`${where}: cannot read IAM policy ${file}: ${(err as Error).message}`);
  }
  const parsed = iamPolicySchema.safeParse(raw);
  if (!parsed.success) throw new EmulatorConfigError(`${where}: invalid IAM policy ${file}:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Validates a config and resolves policy files (relative to `baseDir`). Throws EmulatorConfigError. */
export function resolveEmulatorConfig(raw: unknown, baseDir = process.cwd(), source = 'EC2 emulator config'): ResolvedEmulatorConfig {
  const parsed = emulatorConfigSchema.safeParse(raw);
  if (!parsed.success) throw new EmulatorConfigError(`${source} is invalid:\n${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  const issues = referenceIssues(c);
  if (issues.length > 0) {
    const error = new z.ZodError(issues.map((i) => ({ code: 'custom' as const, input: undefined, ...i })));
    throw new EmulatorConfigError(`${source} is invalid:\n${z.prettifyError(error)}`);
  }
  const policyOf = (key: { policy?: IamPolicy | undefined; policyFile?: string | undefined }, where: string) =>
    key.policy ?? readPolicyFile(path.resolve(baseDir, key.policyFile!), `${source}: ${where}`);
  const iam: ResolvedIam | undefined = c.iam && {
    accessKeys: new Map(
      Object.entries(c.iam.accessKeys).map(([accessKeyId, key]) => {
        const user = key.user ?? `emulated-${accessKeyId}`;
        const arn = user.startsWith('arn:') ? user : `arn:aws:iam::${c.accountId}:user/${user}`;
        const policies = [policyOf(key, `iam.accessKeys.${accessKeyId}`)];
        return [accessKeyId, { accessKeyId, secretAccessKey: key.secretAccessKey, principal: { arn, policies } }];
      }),
    ),
    roles: Object.entries(c.iam.roles).map(([roleName, role]) => ({ roleName, instanceIds: role.instances, policies: [policyOf(role, `iam.roles.${roleName}`)] })),
    roleCredentialsTtlSeconds: c.iam.roleCredentialsTtlSeconds,
  };
  return { ...c, iam };
}

/** Reads a JSON or YAML config file (policy files are resolved relative to it). */
export function loadEmulatorConfigFile(file: string): ResolvedEmulatorConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EmulatorConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new EmulatorConfigError(`${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return resolveEmulatorConfig(raw, path.dirname(path.resolve(file)), file);
}

function macFor(index: number): string {
  const hex = (index + 1).toString(16).padStart(6, '0');
  return `02:00:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

/** The initial state: ENIs get a MAC and attachment id when none is given; tables get their local route. */
export function initialSnapshot(c: ResolvedEmulatorConfig, startedAt = new Date()): Ec2Snapshot {
  const usedMacs = new Set(c.networkInterfaces.flatMap((e) => (e.macAddress ? [e.macAddress] : [])));
  let nextMac = 0;
  const freshMac = () => {
    let mac = macFor(nextMac++);
    while (usedMacs.has(mac)) mac = macFor(nextMac++);
    return mac;
  };
  const networkInterfaces = c.networkInterfaces.map(
    (e): NetworkInterface => ({
      id: e.id,
      subnetId: e.subnetId,
      macAddress: e.macAddress ?? freshMac(),
      privateIpAddress: e.privateIpAddress,
      secondaryPrivateIpAddresses: e.secondaryPrivateIpAddresses,
      instanceId: e.instanceId,
      attachmentId: e.instanceId ? `eni-attach-${e.id.slice('eni-'.length)}` : undefined,
      // The configured ENIs were attached when the emulated VPC came up.
      attachTime: e.instanceId ? new Date(e.attachTime ?? startedAt).toISOString() : undefined,
      deviceIndex: e.deviceIndex,
      sourceDestCheck: e.sourceDestCheck,
      description: e.description,
      tags: e.tags,
      ipv4AddressesMax: e.ipv4AddressesMax,
    }),
  );
  const routeTables = c.routeTables.map((t): RouteTable => {
    const vpc = c.vpcs.find((v) => v.id === t.vpcId)!;
    const hasLocal = t.routes.some((r) => r.destinationCidrBlock === vpc.cidrBlock);
    const local: Route[] = hasLocal ? [] : [{ destinationCidrBlock: vpc.cidrBlock, gatewayId: 'local', origin: 'CreateRouteTable' }];
    const configured = t.routes.map(
      (r): Route => ({
        destinationCidrBlock: r.destinationCidrBlock,
        ...(r.networkInterfaceId ? { networkInterfaceId: r.networkInterfaceId } : {}),
        ...(r.gatewayId ? { gatewayId: r.gatewayId } : {}),
        origin: r.gatewayId === 'local' ? 'CreateRouteTable' : 'CreateRoute',
      }),
    );
    return {
      id: t.id,
      vpcId: t.vpcId,
      routes: [...local, ...configured],
      tags: t.tags,
      subnetIds: t.subnetIds,
      main: t.main,
    };
  });
  const instances = c.instances.map((i): Instance => ({ id: i.id, state: i.state, tags: i.tags }));
  return {
    region: c.region,
    accountId: c.accountId,
    vpcs: c.vpcs,
    subnets: c.subnets,
    networkInterfaces,
    routeTables,
    instances,
  };
}
