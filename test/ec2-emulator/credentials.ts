// The emulator's credential store: the long-term access keys of the config and the temporary
// credentials of instance roles, which IMDS hands to each instance as EC2 does
// (`iam/security-credentials/ROLE`). A temporary key id (ASIA…) signs only together with its session
// token, works until its expiration, and is rotated before it expires: a new set is handed out once
// less than five minutes (or half the lifetime, when shorter) remain, while the old one stays valid
// until its own expiration — what an SDK that refreshes on time never notices.
import { createHash, randomBytes } from 'node:crypto';
import type { IamPrincipal, InstanceRole, ResolvedIam } from './config.js';

/** A key id the emulator knows, with what it takes to verify a request signed with it. */
export interface Caller {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials only: the token that must come with every request. */
  readonly sessionToken: string | undefined;
  /** Temporary credentials only: wall-clock ms after which requests are refused as expired. */
  readonly expiresAtMs: number | undefined;
  readonly principal: IamPrincipal;
}

/** One instance role's current temporary credentials, with what IMDS says about the instance profile. */
export interface RoleCredentials {
  readonly roleName: string;
  readonly instanceProfileArn: string;
  readonly instanceProfileId: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly token: string;
  /** Wall-clock ms. */
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

const rotateBeforeMs = 5 * 60_000;
/** Expired temporary keys are remembered this long (answered "expired", not "unknown"), then forgotten. */
const rememberExpiredMs = 60 * 60_000;
const upperAlnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomId(prefix: string, length: number): string {
  const bytes = randomBytes(length);
  return prefix + [...bytes].map((b) => upperAlnum[b % upperAlnum.length]).join('');
}

export class CredentialStore {
  readonly #iam: ResolvedIam;
  readonly #accountId: string;
  readonly #now: () => number;
  /** Temporary key id → caller. */
  readonly #temporary = new Map<string, Caller>();
  /** Instance id → its current credentials. */
  readonly #current = new Map<string, RoleCredentials>();

  /** `now` is the wall clock (ms): expirations are wall-clock times, as in the IMDS document. */
  constructor(iam: ResolvedIam, accountId: string, now: () => number = Date.now) {
    this.#iam = iam;
    this.#accountId = accountId;
    this.#now = now;
  }

  /** The key's owner and secret; undefined for a key id nobody issued (or one long expired). */
  caller(accessKeyId: string): Caller | undefined {
    const key = this.#iam.accessKeys.get(accessKeyId);
    if (key) {
      const { secretAccessKey, principal } = key;
      return { accessKeyId, secretAccessKey, sessionToken: undefined, expiresAtMs: undefined, principal };
    }
    return this.#temporary.get(accessKeyId);
  }

  roleOf(instanceId: string): InstanceRole | undefined {
    return this.#iam.roles.find((r) => r.instanceIds.includes(instanceId));
  }

  /** The credentials IMDS serves `instanceId` now (issued or rotated as needed); undefined when it has no role. */
  roleCredentials(instanceId: string): RoleCredentials | undefined {
    const role = this.roleOf(instanceId);
    if (!role) return undefined;
    const now = this.#now();
    const ttlMs = this.#iam.roleCredentialsTtlSeconds * 1000;
    const current = this.#current.get(instanceId);
    if (current && current.expiresAtMs - now > Math.min(rotateBeforeMs, ttlMs / 2)) return current;
    this.#forgetExpired(now);
    const issued: RoleCredentials = {
      roleName: role.roleName,
      instanceProfileArn: `arn:aws:iam::${this.#accountId}:instance-profile/${role.roleName}`,
      // Stable per profile, in the shape IAM gives instance profile ids.
      instanceProfileId: `AIPA${createHash('sha256').update(role.roleName).digest('hex').slice(0, 17).toUpperCase()}`,
      accessKeyId: randomId('ASIA', 16),
      secretAccessKey: randomBytes(30).toString('base64'),
      token: randomBytes(384).toString('base64'),
      // IMDS states times to the second.
      issuedAtMs: Math.floor(now / 1000) * 1000,
      expiresAtMs: Math.floor((now + ttlMs) / 1000) * 1000,
    };
    this.#current.set(instanceId, issued);
    this.#temporary.set(issued.accessKeyId, {
      accessKeyId: issued.accessKeyId,
      secretAccessKey: issued.secretAccessKey,
      sessionToken: issued.token,
      expiresAtMs: issued.expiresAtMs,
      // EC2 names an instance role's session after the instance.
      principal: { arn: `arn:aws:sts::${this.#accountId}:assumed-role/${role.roleName}/${instanceId}`, policies: role.policies },
    });
    return issued;
  }

  #forgetExpired(now: number): void {
    for (const [keyId, caller] of this.#temporary) {
      if (caller.expiresAtMs !== undefined && caller.expiresAtMs + rememberExpiredMs < now) {
        this.#temporary.delete(keyId);
      }
    }
  }
}

/** The IMDS documents of an instance role, formatted as IMDS formats them (`"Key" : "value"`). */
export function imdsIamDocuments(c: RoleCredentials): { info: string; credentials: string } {
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const format = (doc: Record<string, string>) => `{\n${Object.entries(doc).map(([k, v]) => `  ${JSON.stringify(k)} : ${JSON.stringify(v)}`).join(',\n')}\n}`;
  return {
    info: format({ Code: 'Success', LastUpdated: iso(c.issuedAtMs), InstanceProfileArn: c.instanceProfileArn, InstanceProfileId: c.instanceProfileId }),
    credentials: format({
      Code: 'Success',
      LastUpdated: iso(c.issuedAtMs),
      Type: 'AWS-HMAC',
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.token,
      Expiration: iso(c.expiresAtMs),
    }),
  };
}
