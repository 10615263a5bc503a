// The one catalogue of coded errors. Every error pgvip reports to a person or a peer has a code here,
// a message template, an HTTP status where it crosses HTTP, and a line in docs/errors.md (a test keeps
// the two in step). Wire values of codes never change once released.

export type ErrorCategory = 'config' | 'auth' | 'protocol' | 'state' | 'postgres' | 'vip' | 'operator' | 'internal';

export interface ErrorSpec {
  readonly category: ErrorCategory;
  readonly httpStatus?: number;
  readonly message: string;
}

export const errorCatalogue = {
  // configuration
  PGVIP_CONFIG_UNREADABLE: { category: 'config', message: 'cannot read the config file' },
  PGVIP_CONFIG_SYNTAX: { category: 'config', message: 'the config file is not valid YAML' },
  PGVIP_CONFIG_INVALID: { category: 'config', message: 'the config file has invalid fields' },
  PGVIP_CONFIG_TIMING: { category: 'config', message: 'the configured timings break a safety inequality' },
  // authentication (node-to-node)
  PGVIP_AUTH_MISSING: { category: 'auth', httpStatus: 401, message: 'the request carries no pgvip authentication header' },
  PGVIP_AUTH_BAD_MAC: { category: 'auth', httpStatus: 401, message: 'the request MAC does not verify' },
  PGVIP_AUTH_REPLAY: { category: 'auth', httpStatus: 401, message: 'the request was already seen (replay)' },
  PGVIP_AUTH_WRONG_CLUSTER: { category: 'auth', httpStatus: 403, message: 'the request is for another cluster' },
  PGVIP_AUTH_UNKNOWN_SENDER: { category: 'auth', httpStatus: 403, message: 'the sender is not a member of this cluster' },
  PGVIP_AUTH_STALE_EPOCH: { category: 'auth', httpStatus: 401, message: 'the request was signed for an earlier run of the receiving node; sign it again and resend it' },
  PGVIP_AUTH_WRONG_RECIPIENT: { category: 'auth', httpStatus: 403, message: 'the request is addressed to another node' },
  PGVIP_AUTH_SENDER_MISMATCH: { category: 'auth', httpStatus: 403, message: "the message's cluster or sender differs from the authenticated one" },
  PGVIP_AUTH_KEY_FILE: { category: 'config', message: 'the cluster key file does not hold a usable key, or cannot be created' },
  PGVIP_TLS_FILE: { category: 'config', message: 'a TLS certificate, key or CA file is missing, unreadable or not PEM, or the key does not belong to the certificate' },
  // protocol
  PGVIP_BAD_REQUEST: { category: 'protocol', httpStatus: 400, message: 'the request body does not match the protocol schema' },
  PGVIP_PROTOCOL_VERSION: { category: 'protocol', httpStatus: 400, message: 'unsupported protocol version' },
  PGVIP_STALE_TERM: { category: 'protocol', httpStatus: 409, message: 'the request carries a term older than the highest term seen' },
  PGVIP_TERM_OUT_OF_RANGE: { category: 'protocol', httpStatus: 400, message: 'the message carries a term above 2^48 (281474976710656), the highest any node accepts; no election gets there, so the sender is broken or forged the message with the cluster key' },
  PGVIP_NOT_FOUND: { category: 'protocol', httpStatus: 404, message: 'no such endpoint' },
  PGVIP_HEALTH_QUERY: { category: 'protocol', httpStatus: 400, message: "a health endpoint's query string is not one it takes: an unknown or repeated parameter, a value it cannot read (lag=16MB, replication_state=streaming, mode=apply|write), or more than 200 characters; see docs/api.md" },
  // peers (node-to-node transport)
  PGVIP_PEER_UNREACHABLE: { category: 'protocol', message: 'a peer could not be reached' },
  PGVIP_PEER_TIMEOUT: { category: 'protocol', message: 'a peer did not answer in time' },
  PGVIP_PEER_REFUSED: { category: 'protocol', message: 'a peer refused the request' },
  PGVIP_REPLY_TOO_LARGE: { category: 'protocol', message: 'a reply was larger than pgvip replies ever are (64 KiB): whatever answers at that address is not a pgvip daemon, or misbehaves' },
  PGVIP_INTERNAL: { category: 'internal', httpStatus: 500, message: 'an internal error occurred' },
  // durable state
  PGVIP_STATE_CORRUPT: { category: 'state', message: 'the durable state file is corrupt; refusing to start at term 0' },
  PGVIP_STATE_WRITE: { category: 'state', message: 'cannot persist durable state' },
  // postgres
  PGVIP_PG_UNREACHABLE: { category: 'postgres', message: 'cannot reach PostgreSQL (not running, refusing connections, starting or shutting down)' },
  PGVIP_PG_TIMEOUT: { category: 'postgres', message: 'PostgreSQL did not answer within the time bound (stalled or overloaded)' },
  PGVIP_PG_QUERY_FAILED: { category: 'postgres', message: 'a PostgreSQL statement failed' },
  PGVIP_PG_READ_ONLY: { category: 'postgres', message: 'PostgreSQL refused a write: the server is a standby or fenced read-only' },
  PGVIP_PG_NOT_STANDBY: { category: 'postgres', message: 'the operation needs a standby but PostgreSQL is not in recovery' },
  PGVIP_PG_PROMOTE_FAILED: { category: 'postgres', message: 'PostgreSQL did not finish promotion in time' },
  PGVIP_PG_FENCE_FAILED: { category: 'postgres', message: 'could not fence PostgreSQL against writes' },
  PGVIP_PG_CTL_FAILED: { category: 'postgres', message: 'pg_ctl could not start or stop PostgreSQL' },
  PGVIP_PG_REWIND_FAILED: { category: 'postgres', message: 'pg_rewind failed and no re-seed method is configured (rejoin.reseed.methods is empty)' },
  PGVIP_PG_BASE_BACKUP_FAILED: { category: 'postgres', message: 'pg_basebackup from the primary failed (and every re-seed method before it)' },
  PGVIP_PG_RESEED_COMMAND_FAILED: {
    category: 'postgres',
    message: 'the re-seed command (rejoin.reseed.command) failed, timed out or left no data directory (and every re-seed method before it)',
  },
  PGVIP_PG_SLOT_COPY_FAILED: {
    category: 'postgres',
    message: 'a logical slot could not be copied to this standby (replication.logicalSlots): the slot is not kept here for a failover until a later try works',
  },
  // vip
  PGVIP_VIP_EC2_FAILED: { category: 'vip', message: 'EC2 refused or failed a call that moves or checks the VIP' },
  PGVIP_VIP_UNAUTHORIZED: { category: 'vip', message: "EC2 denied a VIP call: the instance's IAM role lacks a permission, or its credentials are not accepted" },
  PGVIP_VIP_TIMEOUT: { category: 'vip', message: 'the VIP call did not succeed within its time budget (timeouts, throttling or EC2 server errors until the end)' },
  PGVIP_VIP_IMDS: { category: 'vip', message: 'the instance metadata service (IMDSv2) did not answer as expected' },
  PGVIP_VIP_OS_ADDRESS: { category: 'vip', message: 'could not add, remove or read the VIP on the OS network interface' },
  PGVIP_VIP_NOT_FOUND: { category: 'vip', message: 'an EC2 resource the VIP needs does not exist (network interface, route table or route)' },
  // witness / operator
  PGVIP_OPERATOR_AUTH: { category: 'operator', httpStatus: 401, message: 'the operator API needs a valid bearer token: an Authorization header of Bearer and the token in operatorApi.tokenFile' },
  PGVIP_OPERATOR_HOST: { category: 'operator', httpStatus: 421, message: "the request's Host is not an address or name of this operator API (operatorApi.host, loopback, localhost or operatorApi.hostNames); a browser page that re-pointed its own name at the witness (DNS rebinding) looks like this" },
  PGVIP_OPERATOR_ORIGIN: { category: 'operator', httpStatus: 403, message: "the request comes from a web page of another origin; only the witness's own dashboard page and clients that send no Origin (the CLI, curl) may call the operator API" },
  PGVIP_OPERATOR_CONTENT_TYPE: { category: 'operator', httpStatus: 415, message: 'an operator command must be sent with Content-Type: application/json' },
  PGVIP_OPERATOR_BAD_REQUEST: { category: 'operator', httpStatus: 400, message: 'the operator request is malformed (bad JSON, unknown or missing fields, or invalid values)' },
  PGVIP_OPERATOR_INSTANCE_MISMATCH: {
    category: 'operator',
    message: "pgvip failover --stop-old-primary: EC2 does not show the instance holding the old primary's address, or it is the node being promoted; nothing was stopped and no failover asked for",
  },
  PGVIP_OPERATOR_REFUSED: { category: 'operator', httpStatus: 409, message: 'the witness refused the operator command in the current cluster state' },
  PGVIP_OPERATOR_NO_FAILOVER: { category: 'operator', httpStatus: 409, message: 'the command names a node with noFailover: true (cluster.nodes), which no switchover or failover may promote' },
  PGVIP_QUORUM_MOVE_NODES: { category: 'operator', httpStatus: 409, message: 'pgvip etcd hand-back: the cluster has more than two database nodes, and the witness backend runs exactly two; the cluster stays on etcd' },
  PGVIP_UNKNOWN_CLUSTER: { category: 'operator', httpStatus: 404, message: 'this witness serves no cluster of that name' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An error with a catalogue code; `detail` says what exactly was wrong and how to fix it. */
export class PgvipError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  readonly httpStatus: number | undefined;
  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = errorCatalogue[code];
    super(`${code}: ${spec.message}: ${detail}`, options);
    this.name = 'PgvipError';
    this.code = code;
    this.detail = detail;
    this.httpStatus = spec.httpStatus;
  }
  get category(): ErrorCategory {
    return errorCatalogue[this.code].category;
  }
}

export function isPgvipError(e: unknown, code?: ErrorCode): e is PgvipError {
  return e instanceof PgvipError && (code === undefined || e.code === code);
}
