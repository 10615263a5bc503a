// The keys of one cluster in etcd (docs/design.md, Quorum on etcd). Every key is built here, from a
// prefix and names that passed the same rules as the config and the wire: a prefix of plain /segments
// and names of letters, digits, '.', '_' and '-' that start with a letter or digit. So no name can
// hold a '/', be '.' or '..', or reach outside `<prefix>/<cluster>/`, and etcd permissions granted on
// the prefix cover every key pgvip touches.
import { clusterNameSchema, nodeIdSchema } from '@pgvip/shared';

// The config's prefix rule (quorum.etcd.prefix): one or more /segments, no trailing '/', no '.' or
// '..' segment, at most 128 characters.
const prefixPattern = /^(\/(?!\.\.?(\/|$))[A-Za-z0-9._-]+)+$/;

export interface ClusterKeys {
  /** Every key of the cluster starts with this (ends in '/'). */
  readonly clusterPrefix: string;
  /** {node, term} on the holder's etcd lease: present while the primary of `term` renews it. */
  readonly leader: string;
  /** {term, primary, grantors}: the term counter, moved only by a campaign, a handover or a forced failover. */
  readonly term: string;
  /** {members, k, term}: the claim a failover relies on (an older agent's {standby, term} is read too). */
  readonly sync: string;
  /** Present while the cluster is in maintenance: nobody wins a campaign. */
  readonly maintenance: string;
  /** An operator's switchover request for the primary to take. */
  readonly switchover: string;
  /** Prefix of the members' status keys. */
  readonly membersPrefix: string;
  member(node: string): string;
  /** Prefix of the withdrawn standbys' final positions ({term, timeline, flushLsn}, no lease). */
  readonly positionsPrefix: string;
  position(node: string): string;
}

/** Why a prefix or name cannot make a key, or null. */
export function keyProblem(prefix: string, cluster: string): string | null {
  if (prefix.length > 128 || !prefixPattern.test(prefix)) {
    return `etcd prefix ${JSON.stringify(prefix.slice(0, 140))} is not a key path of /segments of letters, digits, '.', '_' or '-'`;
  }
  if (!clusterNameSchema.safeParse(cluster).success) return `cluster name ${JSON.stringify(cluster.slice(0, 80))} cannot be part of an etcd key`;
  return null;
}

export function clusterKeys(prefix: string, cluster: string): ClusterKeys {
  const problem = keyProblem(prefix, cluster);
  if (problem !== null) throw new RangeError(problem);
  const base = `${prefix}/${cluster}/`;
  const membersPrefix = `${base}members/`;
  const positionsPrefix = `${base}position/`;
  const named = (node: string): string => {
    if (!nodeIdSchema.safeParse(node).success) throw new RangeError(`node name ${JSON.stringify(node.slice(0, 80))} cannot be part of an etcd key`);
    return node;
  };
  return {
    clusterPrefix: base,
    leader: `${base}leader`,
    term: `${base}term`,
    sync: `${base}sync`,
    maintenance: `${base}maintenance`,
    switchover: `${base}switchover`,
    membersPrefix,
    member(node: string): string {
      return `${membersPrefix}${named(node)}`;
    },
    positionsPrefix,
    position(node: string): string {
      return `${positionsPrefix}${named(node)}`;
    },
  };
}

/** The end of a range that covers every key starting with `prefix` (etcd's range_end: prefix + 1). */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  // The prefix ends in '/', an ASCII byte below 0xff, so adding one to the last byte is exact.
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}
