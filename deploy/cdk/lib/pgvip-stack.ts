// One pgvip cluster in an existing VPC: db-a and db-b (and, with `dbC`, db-c; each with its own
// tagged ENI), the witness, their security groups and instance roles, and the cluster key in Secrets
// Manager.
//
//   secondary-ip mode: the DB nodes share one subnet; the VIP starts as a secondary address of db-a's
//                      ENI and pgvip moves it (AssignPrivateIpAddresses) to the primary.
//   route-table mode:  the DB nodes sit in different AZs (three nodes: one in each of three AZs, the
//                      production layout); the VIP lies outside the VPC CIDR, every DB ENI has
//                      source/destination check off, and each listed route table holds a VIP/32 route
//                      that starts at db-a's ENI and that pgvip repoints (ReplaceRoute).
//
// With an `etcd` block it also creates the etcd members of the etcd quorum backend, or opens existing
// members' security group to this cluster (etcd-members.ts; docs/etcd.md).
//
// After the first deploy pgvip owns the VIP: CloudFormation only creates the secondary address and the
// routes; an update that changed them would move the VIP behind pgvip's back (docs/deploy.md).
import { Aws, CfnOutput, Fn, Stack, Tags, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct, IConstruct } from 'constructs';
import { dbNodeNames, type ClusterConfig } from './cluster-config.js';
import { addEtcd, type EtcdResources } from './etcd-members.js';
import { clusterTagKey, renderAgentPolicy, renderStopInstancePolicy, roleTagKey } from './iam-policies.js';

export interface PgvipClusterStackProps extends StackProps {
  readonly cluster: ClusterConfig;
  /**
   * Acknowledge the cdk-nag findings that do not apply (default true). The tests turn it off to see
   * that each acknowledgment stands for a real finding and that no other finding exists.
   */
  readonly acknowledgeNagFindings?: boolean;
}

/** Ports of the pgvip protocol (the config defaults) and of PostgreSQL. */
export const ports = { postgres: 5432, agent: 8008, witness: 8009 } as const;

/**
 * Acknowledges a cdk-nag finding on a construct. Every acknowledgment must say why the finding does
 * not apply here; the tests read these back and check each has a real reason.
 */
function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < 20) throw new Error(`acknowledging ${id} needs a reason, got ${JSON.stringify(reason)}`);
  const stack = Stack.of(scope) as PgvipClusterStack;
  stack.nagAcknowledgments.push({ path: scope.node.path, id, reason });
  if (stack.acknowledgesNagFindings) Validations.of(scope).acknowledge({ id, reason });
}

type Role = 'agent' | 'witness';

/** Logical id stems of the database nodes (DbAInterface, DbA, ...): stable, so updates keep resources. */
const logicalName = { dbA: 'DbA', dbB: 'DbB', dbC: 'DbC' } as const;

export class PgvipClusterStack extends Stack {
  /** Every cdk-nag finding this stack acknowledges, where, and why. */
  readonly nagAcknowledgments: Array<{ readonly path: string; readonly id: string; readonly reason: string }> = [];
  readonly acknowledgesNagFindings: boolean;
  readonly clusterKey: secretsmanager.Secret;
  readonly dbSecurityGroup: ec2.SecurityGroup;
  readonly witnessSecurityGroup: ec2.SecurityGroup;
  readonly agentRole: iam.Role;
  readonly witnessRole: iam.Role;
  readonly networkInterfaces: {
    readonly dbA: ec2.CfnNetworkInterface;
    readonly dbB: ec2.CfnNetworkInterface;
    /** The three-node layout only. */
    readonly dbC?: ec2.CfnNetworkInterface;
  };
  readonly instances: {
    readonly dbA: ec2.CfnInstance;
    readonly dbB: ec2.CfnInstance;
    /** The three-node layout only. */
    readonly dbC?: ec2.CfnInstance;
    readonly witness: ec2.CfnInstance;
  };
  /** The etcd cluster of the etcd quorum backend, when the description has one (etcd-members.ts). */
  readonly etcd: EtcdResources | undefined;

  constructor(scope: Construct, id: string, props: PgvipClusterStackProps) {
    super(scope, id, props);
    this.acknowledgesNagFindings = props.acknowledgeNagFindings ?? true;
    const c = props.cluster;
    Tags.of(this).add(clusterTagKey, c.clusterName);
    const dbNames = dbNodeNames(c);
    // How acknowledgments and descriptions count the database nodes ("the two ENIs").
    const count = dbNames.length === 2 ? 'two' : 'three';

    // The VPC is described, not looked up: synth stays offline and needs no credentials.
    const hosts = [...dbNames.map((name) => c[name]!), c.witness];
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: c.vpc.id,
      vpcCidrBlock: c.vpc.cidrBlock,
      availabilityZones: [...new Set(hosts.map((n) => n.subnet.availabilityZone))],
    });

    // ---- the cluster key: one line of hex (32 random bytes), as auth.keyFile expects ----
    this.clusterKey = new secretsmanager.Secret(this, 'ClusterKey', {
      description: `pgvip cluster ${c.clusterName}: the key that authenticates agents and witness (auth.keyFile)`,
      generateSecretString: {
        passwordLength: 64,
        excludeUppercase: true,
        excludePunctuation: true,
        includeSpace: false,
        // What is left of lower-case letters and digits is exactly the hex digits.
        excludeCharacters: 'ghijklmnopqrstuvwxyz',
      },
    });
    acknowledge(this.clusterKey, 'AwsSolutions-SMG4', 'pgvip cannot rotate its cluster key live: all three members must switch together (docs/security.md, "The cluster key"), so rotation is an operator procedure, not a Lambda.');

    // ---- security groups: 5432 from clients, the pgvip ports only among the three members ----
    this.dbSecurityGroup = new ec2.SecurityGroup(this, 'DbSecurityGroup', {
      vpc,
      description: `pgvip ${c.clusterName} database nodes: PostgreSQL from clients and peers, agent API from peers`,
      allowAllOutbound: true,
    });
    this.witnessSecurityGroup = new ec2.SecurityGroup(this, 'WitnessSecurityGroup', {
      vpc,
      description: `pgvip ${c.clusterName} witness: peer API from the database nodes only`,
      allowAllOutbound: true,
    });
    const db = this.dbSecurityGroup;
    const witness = this.witnessSecurityGroup;
    for (const block of c.clients.cidrBlocks) db.addIngressRule(ec2.Peer.ipv4(block), ec2.Port.tcp(ports.postgres), 'PostgreSQL clients (VIP and nodes)');
    c.clients.securityGroupIds.forEach((sg) => db.addIngressRule(ec2.Peer.securityGroupId(sg), ec2.Port.tcp(ports.postgres), `PostgreSQL clients in ${sg}`));
    db.addIngressRule(db, ec2.Port.tcp(ports.postgres), 'replication, pg_rewind and pg_basebackup between the nodes');
    db.addIngressRule(db, ec2.Port.tcp(ports.agent), count === 'two' ? 'agent API from the other database node' : 'agent API from the other database nodes');
    db.addIngressRule(witness, ec2.Port.tcp(ports.agent), 'agent API from the witness');
    witness.addIngressRule(db, ec2.Port.tcp(ports.witness), 'witness API from the agents');

    // ---- roles: the agent policy is the very document in deploy/iam; the witness gets no EC2 action ----
    const agentPolicy = renderAgentPolicy(c.mode, {
      region: Aws.REGION,
      account: Aws.ACCOUNT_ID,
      cluster: c.clusterName,
      ...(c.mode === 'route-table' ? { routeTableIds: c.routeTableIds } : {}),
    });
    this.agentRole = new iam.Role(this, 'AgentRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `pgvip ${c.clusterName} agents: move the VIP (${c.mode} mode), read the cluster key`,
      inlinePolicies: { 'pgvip-vip': iam.PolicyDocument.fromJson(agentPolicy) },
    });
    // The witness needs no EC2 action; with allowForcedStop, operators running `pgvip failover
    // --stop-old-primary` on it may stop this cluster's database instances (tags pgvip:cluster, pgvip:role)
    // after checking which addresses the instance holds (DescribeNetworkInterfaces).
    const stopPolicy = renderStopInstancePolicy({
      region: Aws.REGION,
      account: Aws.ACCOUNT_ID,
      cluster: c.clusterName,
    });
    this.witnessRole = new iam.Role(this, 'WitnessRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: c.allowForcedStop
        ? `pgvip ${c.clusterName} witness: read the cluster key; stop a database instance on a forced failover`
        : `pgvip ${c.clusterName} witness: read the cluster key; no EC2 permission at all`,
      ...(c.allowForcedStop ? { inlinePolicies: { 'pgvip-forced-stop': iam.PolicyDocument.fromJson(stopPolicy) } } : {}),
    });
    if (c.allowForcedStop) {
      acknowledge(
        this.witnessRole,
        'AwsSolutions-IAM5[Resource::arn:aws:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        `ec2:StopInstances is limited by the conditions aws:ResourceTag/pgvip:cluster and pgvip:role to this cluster's ${count} database instances; their ids are not known when the policy is made.`,
      );
      acknowledge(
        this.witnessRole,
        'AwsSolutions-IAM5[Resource::*]',
        'ec2:DescribeNetworkInterfaces (read-only: the CLI checks the instance holds the old primary\'s address before stopping it) has no resource-level permissions in IAM: it can only be granted on "*".',
      );
    }
    if (c.mode === 'secondary-ip') {
      acknowledge(this.agentRole, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeNetworkInterfaces has no resource-level permissions in IAM: it can only be granted on "*".');
      acknowledge(
        this.agentRole,
        'AwsSolutions-IAM5[Resource::arn:aws:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*]',
        `Assign/UnassignPrivateIpAddresses are limited by the condition aws:ResourceTag/pgvip:cluster to the ${count} ENIs of this cluster; the ENI ids cannot be listed because the VIP must move between them.`,
      );
    } else {
      acknowledge(this.agentRole, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeRouteTables and ec2:DescribeNetworkInterfaces have no resource-level permissions in IAM: they can only be granted on "*".');
    }
    for (const [role, who] of [[this.agentRole, 'agent'], [this.witnessRole, 'witness']] as const) {
      this.clusterKey.grantRead(role);
      if (c.ssm) {
        role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));
        acknowledge(
          role,
          'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
          `Session Manager access to the ${who} replaces SSH keys and open port 22; AWS maintains this policy's list of SSM actions (set "ssm": false to leave it out).`,
        );
      }
    }

    // ---- the release (optional): uploaded as an asset, installed at first boot ----
    const release = c.releaseTarball ? new Asset(this, 'Release', { path: c.releaseTarball }) : undefined;
    if (release) {
      release.grantRead(this.agentRole);
      release.grantRead(this.witnessRole);
    }

    // ---- ENIs: created explicitly so they carry the cluster tag the agent policy is scoped to ----
    const eni = (name: 'dbA' | 'dbB' | 'dbC', label: string) => {
      const n = c[name]!;
      const holdsVip = c.mode === 'secondary-ip' && name === 'dbA';
      const resource = new ec2.CfnNetworkInterface(this, `${logicalName[name]}Interface`, {
        subnetId: n.subnet.id,
        groupSet: [db.securityGroupId],
        description: `pgvip ${c.clusterName} ${label}`,
        // Route-table mode: the node receives packets for the VIP, which is not its own address.
        sourceDestCheck: c.mode === 'secondary-ip',
        ...(holdsVip
          ? {
              privateIpAddresses: [
                { privateIpAddress: n.address, primary: true },
                { privateIpAddress: c.vip, primary: false },
              ],
            }
          : { privateIpAddress: n.address }),
        tags: [
          { key: clusterTagKey, value: c.clusterName },
          { key: 'Name', value: `pgvip-${c.clusterName}-${label}` },
        ],
      });
      return resource;
    };
    this.networkInterfaces = {
      dbA: eni('dbA', 'db-a'),
      dbB: eni('dbB', 'db-b'),
      ...(c.dbC === undefined ? {} : { dbC: eni('dbC', 'db-c') }),
    };

    const agentProfile = new iam.CfnInstanceProfile(this, 'AgentInstanceProfile', { roles: [this.agentRole.roleName] });
    const witnessProfile = new iam.CfnInstanceProfile(this, 'WitnessInstanceProfile', { roles: [this.witnessRole.roleName] });
    const image = ec2.MachineImage.latestAmazonLinux2023().getImage(this);

    const instance = (
      id: string,
      label: string,
      role: Role,
      network: ec2.CfnInstance.NetworkInterfaceProperty,
      volumeGiB: number,
    ) => {
      const userData = bootScript(c, role, this.clusterKey, release);
      const resource = new ec2.CfnInstance(this, id, {
        imageId: image.imageId,
        instanceType: role === 'agent' ? c.dbInstanceType : c.witnessInstanceType,
        iamInstanceProfile: (role === 'agent' ? agentProfile : witnessProfile).ref,
        networkInterfaces: [network],
        userData: Fn.base64(userData.render()),
        monitoring: true,
        // A database host is not cattle: deleting it by accident loses a replica (or the primary).
        disableApiTermination: true,
        // IMDSv2 only, one hop: the agent reads the instance identity there (docs/vip.md, Discovery).
        metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
        blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: volumeGiB, volumeType: 'gp3', encrypted: true, deleteOnTermination: role === 'witness' } }],
        tags: [
          { key: 'Name', value: `pgvip-${c.clusterName}-${label}` },
          { key: roleTagKey, value: role === 'agent' ? 'database' : 'witness' },
        ],
      });
      return resource;
    };
    const attached = (eniResource: ec2.CfnNetworkInterface) => ({ deviceIndex: '0', networkInterfaceId: eniResource.ref });
    this.instances = {
      dbA: instance('DbA', 'db-a', 'agent', attached(this.networkInterfaces.dbA), c.dbVolumeGiB),
      dbB: instance('DbB', 'db-b', 'agent', attached(this.networkInterfaces.dbB), c.dbVolumeGiB),
      ...(this.networkInterfaces.dbC === undefined ? {} : { dbC: instance('DbC', 'db-c', 'agent', attached(this.networkInterfaces.dbC), c.dbVolumeGiB) }),
      witness: instance(
        'Witness',
        'witness',
        'witness',
        { deviceIndex: '0', subnetId: c.witness.subnet.id, privateIpAddress: c.witness.address, groupSet: [witness.securityGroupId] },
        8,
      ),
    };

    // ---- route-table mode: the VIP/32 route in every listed table, first pointing at db-a ----
    if (c.mode === 'route-table') {
      c.routeTableIds.forEach((routeTableId, i) => {
        const route = new ec2.CfnRoute(this, `VipRoute${i}`, { routeTableId, destinationCidrBlock: `${c.vip}/32`, networkInterfaceId: this.networkInterfaces.dbA.ref });
        route.addResourceDependency(this.instances.dbA);
      });
    }

    this.etcd = addEtcd({
      stack: this,
      cluster: c,
      vpc,
      dbSecurityGroup: db,
      witnessSecurityGroup: witness,
      image,
      acknowledge: (scope, findingId, reason) => acknowledge(scope, findingId, reason),
    });

    const outputs: Record<string, string> = {
      Vip: c.vip,
      DbAInstanceId: this.instances.dbA.ref,
      DbBInstanceId: this.instances.dbB.ref,
      ...(this.instances.dbC === undefined ? {} : { DbCInstanceId: this.instances.dbC.ref }),
      WitnessInstanceId: this.instances.witness.ref,
      DbAInterfaceId: this.networkInterfaces.dbA.ref,
      DbBInterfaceId: this.networkInterfaces.dbB.ref,
      ...(this.networkInterfaces.dbC === undefined ? {} : { DbCInterfaceId: this.networkInterfaces.dbC.ref }),
      ClusterKeySecretArn: this.clusterKey.secretArn,
      // quorum.etcd.endpoints of the cluster block.
      ...(this.etcd === undefined ? {} : { EtcdEndpoints: this.etcd.endpoints.join(',') }),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}

/**
 * First-boot script (Amazon Linux 2023): PostgreSQL packages on the DB nodes, the release when one
 * was given (it carries its own Node.js, so none is installed), and the cluster key from Secrets
 * Manager into /etc/pgvip/<cluster>.key (mode 0600, owned by the daemon's user). Setting PostgreSQL
 * itself up is docs/deploy.md's job.
 */
function bootScript(
  c: ClusterConfig,
  role: Role,
  key: secretsmanager.ISecret,
  release: Asset | undefined,
): ec2.UserData {
  const userData = ec2.UserData.forLinux();
  const serviceUser = role === 'agent' ? 'postgres' : 'pgvip';
  userData.addCommands('set -euo pipefail');
  if (role === 'agent') userData.addCommands('dnf install -y postgresql15-server postgresql15-contrib');
  if (release) {
    const tarball = userData.addS3DownloadCommand({ bucket: release.bucket, bucketKey: release.s3ObjectKey, localFile: '/root/pgvip-release.tar.gz' });
    userData.addCommands(
      'mkdir -p /root/pgvip-release',
      `tar -xzf ${tarball} -C /root/pgvip-release`,
      `/root/pgvip-release/pgvip-*/deploy/install.sh --role ${role}`,
    );
  }
  userData.addCommands(
    'install -d -m 0755 /etc/pgvip',
    `( umask 077; aws secretsmanager get-secret-value --region ${Aws.REGION} --secret-id ${key.secretArn} --query SecretString --output text > /etc/pgvip/${c.clusterName}.key )`,
    `if id ${serviceUser} >/dev/null 2>&1; then chown ${serviceUser}: /etc/pgvip/${c.clusterName}.key; fi`,
  );
  return userData;
}
