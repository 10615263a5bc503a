// Goal: with IAM enforced, the emulator executes only requests whose SigV4 signature verifies with
// the access key's secret, as EC2 does: a wrong secret, a body changed after signing or a request
// dated too far from now is refused with EC2's error, and nothing changes.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import { AssignPrivateIpAddressesCommand, DescribeNetworkInterfacesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { holderOfAddress, type Ec2Emulator } from './index.js';
import { baseConfig, dbA, dbB, ec2Client, emulatorForTest, expectEc2Error, other, region, suiteTimeout, testSecretAccessKey, vip } from './fixtures.js';

const key = 'AKIASIGV4TEST0001';
const authFailure = 'AWS was not able to validate the provided access credentials';

function signedEmulator(t: TestContext): Promise<Ec2Emulator> {
  return emulatorForTest(
    t,
    baseConfig({ iam: { accessKeys: { [key]: { secretAccessKey: testSecretAccessKey, user: 'signer', policy: { Statement: { Effect: 'Allow', Action: 'ec2:*', Resource: '*' } } } } } }),
  );
}

interface CapturedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Signs a call with the real SDK and returns the request it would send, without sending it. */
async function signedBySdk(client: EC2Client, command: AssignPrivateIpAddressesCommand): Promise<CapturedRequest> {
  let captured: CapturedRequest | undefined;
  client.middlewareStack.addRelativeTo(
    () => async (args: { request: unknown }) => {
      const req = args.request as { method: string; path: string; headers: Record<string, string>; body: string };
      captured = { method: req.method, path: req.path, headers: { ...req.headers }, body: String(req.body) };
      throw new Error('captured');
    },
    { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'captureSignedRequest' },
  );
  await assert.rejects(client.send(command), /captured/);
  assert.ok(captured && /^AWS4-HMAC-SHA256 Credential=/.test(captured.headers.authorization ?? ''), 'the SDK signed the request');
  return captured;
}

/** The call every test signs: move the VIP to db-b's ENI. */
function moveVipToDbB(): AssignPrivateIpAddressesCommand {
  return new AssignPrivateIpAddressesCommand({
    NetworkInterfaceId: dbB.eni,
    PrivateIpAddresses: [vip],
    AllowReassignment: true,
  });
}

/** Sends a captured request as it is (node:http keeps every header as given, Host included). */
function send(
  url: string,
  r: CapturedRequest,
): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(r.path, url), { method: r.method, headers: r.headers, timeout: 5_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1] }));
    });
    req.on('error', reject);
    req.end(r.body);
  });
}

describe('SigV4 verification', suiteTimeout, () => {
  it('executes a call signed with the right secret and refuses the same call signed with a wrong one', async (t) => {
    const ec2 = await signedEmulator(t);
    const move = moveVipToDbB();
    await expectEc2Error(ec2Client(ec2.url, { accessKeyId: key, secretAccessKey: `${testSecretAccessKey}x` }).send(move), 'AuthFailure', 401, authFailure);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni, 'a refused call changes nothing');
    await ec2Client(ec2.url, { accessKeyId: key }).send(move);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
    assert.deepEqual(ec2.requests().map((r) => [r.code ?? r.outcome, r.principal]), [['AuthFailure', undefined], ['ok', 'arn:aws:iam::123456789012:user/signer']]);
  });

  it('refuses a request whose body was changed after signing (same length, another ENI), and accepts it unchanged', async (t) => {
    const ec2 = await signedEmulator(t);
    const signed = await signedBySdk(ec2Client(ec2.url, { accessKeyId: key }), moveVipToDbB());
    assert.match(signed.body, new RegExp(`NetworkInterfaceId=${dbB.eni}`));
    const tampered = { ...signed, body: signed.body.replace(dbB.eni, other.eni) };
    assert.equal(tampered.body.length, signed.body.length);
    assert.deepEqual(await send(ec2.url, tampered), { status: 401, code: 'AuthFailure', message: authFailure });
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni, 'the tampered request was not executed');
    // The same bytes as signed go through: what failed was the change, not the replay.
    assert.equal((await send(ec2.url, signed)).status, 200);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbB.eni);
  });

  it('refuses a changed signed header, an unsigned request and a key it does not know', async (t) => {
    const ec2 = await signedEmulator(t);
    const signed = await signedBySdk(ec2Client(ec2.url, { accessKeyId: key }), moveVipToDbB());
    const laterDate = signed.headers['x-amz-date']!.replace(/\d(?=Z$)/, (d) => String((Number(d) + 1) % 10));
    assert.equal((await send(ec2.url, { ...signed, headers: { ...signed.headers, 'x-amz-date': laterDate } })).code, 'AuthFailure');
    const { authorization: _, ...unsigned } = signed.headers;
    assert.equal((await send(ec2.url, { ...signed, headers: unsigned })).code, 'AuthFailure');
    await expectEc2Error(ec2Client(ec2.url, { accessKeyId: 'AKIANOBODYKNOWS01' }).send(new DescribeNetworkInterfacesCommand({})), 'AuthFailure', 401, authFailure);
    assert.equal(holderOfAddress(ec2.state.control, vip)?.id, dbA.eni);
  });

  it('refuses a request dated more than 15 minutes from now with RequestExpired, and accepts 10 minutes of skew', async (t) => {
    const ec2 = await signedEmulator(t);
    const skewed = (offsetMs: number) =>
      new EC2Client({
        region,
        endpoint: ec2.url,
        maxAttempts: 1,
        systemClockOffset: offsetMs,
        credentials: { accessKeyId: key, secretAccessKey: testSecretAccessKey },
      });
    await expectEc2Error(skewed(-20 * 60_000).send(new DescribeNetworkInterfacesCommand({})), 'RequestExpired', 400, 'Request has expired.');
    await expectEc2Error(skewed(20 * 60_000).send(new DescribeNetworkInterfacesCommand({})), 'RequestExpired', 400);
    await skewed(-10 * 60_000).send(new DescribeNetworkInterfacesCommand({}));
    await skewed(10 * 60_000).send(new DescribeNetworkInterfacesCommand({}));
  });
});
