// The etcd cluster of the etcd quorum backend (docs/etcd.md), when the cluster description has an
// `etcd` block:
//
//   create:   3 or 5 members in the given subnets (at most a minority per AZ), each an instance with
//             etcd's data directory on a gp3 volume of its own, etcd from the given release tarball
//             (checked against its SHA-256 before it is unpacked), TLS on the client and the peer port
//             with client certificates required, from a Secrets Manager secret; run by systemd.
//   existing: the members' security group (when given) opens the client port to this cluster.
//
// Least privilege on the network: the client port (2379) from the database nodes' and the witness's
// groups only, the peer port (2380) only among the members. The members' role may read their TLS
// secret and nothing else (plus Session Manager when `ssm`).
import { Aws, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ClusterConfig } from './cluster-config.js';
import type { PgvipClusterStack } from './pgvip-stack.js';

export const etcdPorts = { client: 2379, peer: 2380 } as const;

type CreateConfig = Extract<NonNullable<ClusterConfig['etcd']>, { kind: 'create' }>;

export interface EtcdResources {
  /** Client URLs for quorum.etcd.endpoints. */
  readonly endpoints: readonly string[];
  /** Created members only. */
  readonly securityGroup?: ec2.SecurityGroup;
  readonly role?: iam.Role;
  readonly instances: readonly ec2.CfnInstance[];
}

export interface EtcdContext {
  readonly stack: PgvipClusterStack;
  readonly cluster: ClusterConfig;
  readonly vpc: ec2.IVpc;
  readonly dbSecurityGroup: ec2.SecurityGroup;
  readonly witnessSecurityGroup: ec2.SecurityGroup;
  readonly image: ec2.MachineImageConfig;
  readonly acknowledge: (scope: iam.Role, id: string, reason: string) => void;
}

export function addEtcd(ctx: EtcdContext): EtcdResources | undefined {
  const e = ctx.cluster.etcd;
  if (e === undefined) return undefined;
  if (e.kind === 'existing') {
    if (e.securityGroupId !== undefined) {
      for (const [id, from, who] of [['EtcdClientFromDb', ctx.dbSecurityGroup, 'database nodes'], ['EtcdClientFromWitness', ctx.witnessSecurityGroup, 'witness']] as const) {
        new ec2.CfnSecurityGroupIngress(ctx.stack, id, {
          groupId: e.securityGroupId,
          ipProtocol: 'tcp',
          fromPort: etcdPorts.client,
          toPort: etcdPorts.client,
          sourceSecurityGroupId: from.securityGroupId,
          description: `etcd client port from pgvip ${ctx.cluster.clusterName}'s ${who}`,
        });
      }
    }
    return { endpoints: e.endpoints, instances: [] };
  }
  return createMembers(ctx, e);
}

function createMembers(ctx: EtcdContext, e: CreateConfig): EtcdResources {
  const { stack, cluster: c } = ctx;
  const sg = new ec2.SecurityGroup(stack, 'EtcdSecurityGroup', {
    vpc: ctx.vpc,
    description: `pgvip ${c.clusterName} etcd members: client port from the database nodes and the witness, peer port among members`,
    // Outbound: the release download, Secrets Manager, and the peers.
    allowAllOutbound: true,
  });
  sg.addIngressRule(ctx.dbSecurityGroup, ec2.Port.tcp(etcdPorts.client), 'etcd client port from the database nodes');
  sg.addIngressRule(ctx.witnessSecurityGroup, ec2.Port.tcp(etcdPorts.client), 'etcd client port from the witness');
  sg.addIngressRule(sg, ec2.Port.tcp(etcdPorts.peer), 'etcd peer port among the members');

  const role = new iam.Role(stack, 'EtcdRole', {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: `pgvip ${c.clusterName} etcd members: read their TLS secret; no other AWS permission`,
  });
  const tls = secretsmanager.Secret.fromSecretCompleteArn(stack, 'EtcdTlsSecret', e.tlsSecretArn);
  tls.grantRead(role);
  if (c.ssm) {
    role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'));
    ctx.acknowledge(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'Session Manager access to the etcd members replaces SSH keys and open port 22; AWS maintains this policy\'s list of SSM actions (set "ssm": false to leave it out).',
    );
  }
  const profile = new iam.CfnInstanceProfile(stack, 'EtcdInstanceProfile', { roles: [role.roleName] });

  const names = e.members.map((_, i) => `etcd-${i + 1}`);
  const initialCluster = e.members.map((m, i) => `${names[i]}=https://${m.address}:${etcdPorts.peer}`).join(',');
  const instances = e.members.map((m, i) => {
    const userData = memberBootScript({ name: names[i]!, address: m.address, initialCluster, token: `pgvip-${c.clusterName}`, release: e.release, tlsSecretArn: e.tlsSecretArn });
    return new ec2.CfnInstance(stack, `Etcd${i + 1}`, {
      imageId: ctx.image.imageId,
      instanceType: e.instanceType,
      iamInstanceProfile: profile.ref,
      networkInterfaces: [{ deviceIndex: '0', subnetId: m.subnet.id, privateIpAddress: m.address, groupSet: [sg.securityGroupId] }],
      userData: Fn.base64(userData.render()),
      monitoring: true,
      disableApiTermination: true,
      metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
      blockDeviceMappings: [
        { deviceName: '/dev/xvda', ebs: { volumeSize: 8, volumeType: 'gp3', encrypted: true, deleteOnTermination: true } },
        // etcd's data: every write waits for its WAL fsync here, so a volume of its own (gp3: 3000 IOPS baseline).
        { deviceName: '/dev/sdf', ebs: { volumeSize: e.dataVolumeGiB, volumeType: 'gp3', encrypted: true, deleteOnTermination: false } },
      ],
      tags: [
        { key: 'Name', value: `pgvip-${c.clusterName}-${names[i]}` },
        { key: 'pgvip:role', value: 'etcd' },
      ],
    });
  });
  return { endpoints: e.members.map((m) => `https://${m.address}:${etcdPorts.client}`), securityGroup: sg, role, instances };
}

interface MemberBoot {
  readonly name: string;
  readonly address: string;
  readonly initialCluster: string;
  readonly token: string;
  readonly release: CreateConfig['release'];
  readonly tlsSecretArn: string;
}

/** First boot of a member (Amazon Linux 2023): data volume, etcd from the checked tarball, TLS, systemd. */
export function memberBootScript(m: MemberBoot): ec2.UserData {
  const u = ec2.UserData.forLinux();
  const tls = '/etc/etcd/tls';
  const flags = [
    `--name ${m.name}`,
    '--data-dir /var/lib/etcd/data',
    `--listen-client-urls https://${m.address}:${etcdPorts.client}`,
    `--advertise-client-urls https://${m.address}:${etcdPorts.client}`,
    `--listen-peer-urls https://${m.address}:${etcdPorts.peer}`,
    `--initial-advertise-peer-urls https://${m.address}:${etcdPorts.peer}`,
    `--initial-cluster ${m.initialCluster}`,
    `--initial-cluster-token ${m.token}`,
    '--initial-cluster-state new',
    `--cert-file ${tls}/server.crt --key-file ${tls}/server.key --trusted-ca-file ${tls}/ca.crt --client-cert-auth`,
    `--peer-cert-file ${tls}/server.crt --peer-key-file ${tls}/server.key --peer-trusted-ca-file ${tls}/ca.crt --peer-client-cert-auth`,
  ];
  u.addCommands(
    'set -euo pipefail',
    'dnf install -y jq xfsprogs',
    'id etcd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/etcd --shell /sbin/nologin etcd',
    // The data volume (/dev/sdf: a udev link to its NVMe device): formatted once, mounted by UUID.
    'dev=$(readlink -f /dev/sdf)',
    'blkid "$dev" >/dev/null || mkfs.xfs "$dev"',
    'install -d /var/lib/etcd',
    'grep -q " /var/lib/etcd " /etc/fstab || echo "UUID=$(blkid -s UUID -o value "$dev") /var/lib/etcd xfs defaults,nofail 0 2" >> /etc/fstab',
    'mountpoint -q /var/lib/etcd || mount /var/lib/etcd',
    'install -d -m 0700 -o etcd -g etcd /var/lib/etcd/data',
    // etcd itself, only when the tarball is the one the description names.
    `curl -fsSL --retry 5 -o /root/etcd.tar.gz '${m.release.url}'`,
    `echo '${m.release.sha256}  /root/etcd.tar.gz' | sha256sum -c -`,
    "tar -xzf /root/etcd.tar.gz -C /usr/local/bin --strip-components=1 --wildcards '*/etcd' '*/etcdctl'",
    // TLS from the secret (JSON: ca, cert, key), readable by etcd only.
    `install -d -m 0750 -o root -g etcd ${tls}`,
    `secret=$(aws secretsmanager get-secret-value --region ${Aws.REGION} --secret-id '${m.tlsSecretArn}' --query SecretString --output text)`,
    `( umask 027; echo "$secret" | jq -r .ca > ${tls}/ca.crt; echo "$secret" | jq -r .cert > ${tls}/server.crt; echo "$secret" | jq -r .key > ${tls}/server.key )`,
    `chown root:etcd ${tls}/*; chmod 0640 ${tls}/*`,
    'cat > /etc/systemd/system/etcd.service <<\'UNIT\'',
    '[Unit]',
    'Description=etcd member for pgvip\'s quorum (docs/etcd.md)',
    'After=network-online.target local-fs.target',
    'Wants=network-online.target',
    '[Service]',
    'Type=notify',
    'User=etcd',
    `ExecStart=/usr/local/bin/etcd ${flags.join(' ')}`,
    'Restart=always',
    'RestartSec=1',
    'LimitNOFILE=65536',
    '[Install]',
    'WantedBy=multi-user.target',
    'UNIT',
    'systemctl daemon-reload',
    'systemctl enable --now etcd',
  );
  return u;
}
