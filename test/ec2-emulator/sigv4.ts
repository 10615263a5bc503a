// Who is calling: the access key id and credential scope from a SigV4 signature. The emulator does
// not verify signatures (it has no secrets to check them against); it uses the key id only to pick
// the caller's IAM policy, which is what the tests of least-privilege policies need.

export interface CredentialScope {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

function parseCredential(credential: string): CredentialScope | undefined {
  const [accessKeyId, date, region, service, terminator] = credential.split('/');
  if (!accessKeyId || !date || !region || !service || terminator !== 'aws4_request') return undefined;
  return { accessKeyId, date, region, service };
}

/**
 * Reads the credential scope from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, ...`
 * or, for a presigned request, from the `X-Amz-Credential` parameter. Undefined when unsigned or unreadable.
 */
export function credentialScopeOf(authorization: string | undefined, presignedCredential?: string): CredentialScope | undefined {
  if (authorization !== undefined) {
    const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(authorization.trim());
    if (!m) return undefined;
    for (const part of m[1]!.split(',')) {
      const [key, value] = part.trim().split('=', 2);
      if (key === 'Credential' && value) return parseCredential(value);
    }
    return undefined;
  }
  return presignedCredential ? parseCredential(presignedCredential) : undefined;
}
