// `pgvip doctor`'s TLS check: when the agent file has a tls block, are its files usable (the same
// checks the agent makes at start) and how long is the certificate still valid? An expired
// certificate makes every peer refuse this node; doctor says so weeks before, while nothing is at stake.
import { daysLeft, isPgvipError, loadTlsMaterial, type AgentConfig } from '@pgvip/shared';
import type { Check } from './doctor.js';

const title = 'TLS certificate';

/** null when the agent file has no tls block (nothing to check). */
export async function tlsCheck(config: AgentConfig, nowMs = Date.now()): Promise<Check | null> {
  if (config.tls === undefined) return null;
  let material;
  try {
    material = await loadTlsMaterial(config.tls, 'tls');
  } catch (err) {
    const detail = isPgvipError(err) ? `${err.code}: ${err.detail}` : String(err);
    return { status: 'fail', title, detail, fix: 'the agent refuses to start with these files; fix the file named above' };
  }
  const days = Math.floor(daysLeft(material, nowMs));
  const until = `${config.tls.certFile} is valid until ${material.notAfter.toISOString()}`;
  if (days < 0) {
    return { status: 'fail', title, detail: `${until}: it has EXPIRED, so the peers refuse this node`, fix: 'install a renewed certificate and key, then systemctl reload pgvip-agent (SIGHUP)' };
  }
  if (days < 30) {
    return { status: 'fail', title, detail: `${until}: it expires in ${days} days`, fix: 'renew it before then and systemctl reload pgvip-agent (SIGHUP); no restart is needed' };
  }
  const mutual = config.tls.mutual ? ', mutual TLS' : '';
  return { status: 'ok', title, detail: `${until} (${days} days left), key matches${mutual}` };
}
