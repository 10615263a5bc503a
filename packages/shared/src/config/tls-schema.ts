// The `tls` blocks: of the agent file and the witness file (the peer protocol: listener and
// clients), and of the witness's operatorApi. File-level, not in the cluster block: each host has
// its own certificate and key, while the cluster block is the same text in all three files.
// The files are read and checked at start and on SIGHUP (transport/tls.ts), not by the loader.
import { absolutePath, closedObject, flag, oneOf } from './fields.js';

const certFile = (example: string) =>
  absolutePath(example).describe(
    'PEM certificate this daemon presents (followed by any intermediate certificates). Its subjectAltName must name the address clients dial (the node\'s agent.host, the witness.host, or the operator API\'s address); pgvip init --tls writes such certificates.',
  );
const keyFile = (example: string) =>
  absolutePath(example).describe(
    'Unencrypted PEM private key of certFile, mode 0600 and owned by the daemon\'s user (like every secret). A key that does not belong to certFile stops the daemon at start with PGVIP_TLS_FILE.',
  );

export const PeerTlsSchema = closedObject({
  certFile: certFile('/etc/pgvip/tls/db-a.crt'),
  keyFile: keyFile('/etc/pgvip/tls/db-a.key'),
  caFile: absolutePath('/etc/pgvip/tls/ca.crt').describe(
    'PEM certificate(s) of the CA that issued the cluster\'s certificates. Peers are verified against these alone, never the system store, and always: there is no switch that turns verification off.',
  ),
  mutual: flag()
    .default(false)
    .describe(
      'true: this listener also requires every client to present a certificate issued by caFile (mutual TLS), refusing the connection in the handshake otherwise. pgvip\'s clients always present their certificate, so mutual can be turned on host by host.',
    ),
  transition: oneOf(['listen', 'dial'])
    .optional()
    .meta({ defaultLabel: 'none (TLS only)' })
    .describe(
      'Only while TLS is turned on (or off) one daemon at a time (docs/deploy.md, "Turning TLS on without a maintenance window"). "listen": the listener serves HTTPS and, on the same port, plain HTTP, and this daemon\'s requests stay plain HTTP. "dial": the listener still serves both, and this daemon\'s requests use HTTPS. Unset: HTTPS only. Plain HTTP is then still signed (HMAC), but readable on the network: finish the procedure.',
    ),
})
  .optional()
  .meta({ defaultLabel: 'none (plain HTTP)' })
  .describe(
    'TLS for the peer protocol: this daemon\'s listener serves HTTPS, and its requests to the other daemons of its clusters use HTTPS. All daemons of a cluster must have it (an agent with tls cannot talk to a witness without it); a running cluster turns it on one daemon at a time through transition. HMAC authentication stays as it is inside TLS. SIGHUP reloads the files (docs/security.md, "TLS").',
  );

export const OperatorTlsSchema = closedObject({
  certFile: certFile('/etc/pgvip/tls/witness.crt'),
  keyFile: keyFile('/etc/pgvip/tls/witness.key'),
})
  .optional()
  .meta({ defaultLabel: 'none (plain HTTP; loopback host only)' })
  .describe(
    'TLS for the operator API: it then serves HTTPS (pgvip --witness https://...; --ca-file names the CA to trust). Required when host is not a loopback address, so the operator token never crosses the network in clear. SIGHUP reloads the files.',
  );
