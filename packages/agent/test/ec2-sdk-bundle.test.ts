// Goal: @aws-sdk/client-ec2 bundled as the agent's build bundles it (scripts/bundle-agent.mjs: tree
// shaking through vip/ec2-sdk.ts, schema keys inlined) exports what the source module does, answers
// every call and error exactly as the package does against the EC2 emulator, and is the small thing
// it is built to be.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as sdk from '@aws-sdk/client-ec2';
import { bundleForNode, inlineConstantKeys, type BundleStats } from '../../../scripts/bundle-agent.mjs';
import * as sourceModule from '../src/vip/ec2-sdk.js';
import { startImds } from '../../../test/ec2-emulator/index.js';
import { baseConfig, dbA, dbB, emulatorForTest, overlayVip, region, vip } from '../../../test/ec2-emulator/fixtures.js';

type Sdk = typeof sourceModule;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const packageSchemaFile = path.join(repoRoot, 'node_modules/@aws-sdk/client-ec2/dist-es/schemas/schemas_0.js');

let dir: string;
let bundlePath: string;
let stats: BundleStats;
let bundled: Sdk;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pgvip-sdk-bundle-'));
  bundlePath = path.join(dir, 'ec2-sdk.js');
  stats = await bundleForNode({ entry: path.join(repoRoot, 'packages/agent/src/vip/ec2-sdk.ts'), outfile: bundlePath });
  bundled = (await import(pathToFileURL(bundlePath).href)) as Sdk;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function clientOf(lib: Sdk, endpoint: string, requestTimeoutMs = 5_000): sdk.EC2Client {
  return new lib.EC2Client({
    region,
    endpoint,
    credentials: { accessKeyId: 'AKIDTESTDEFAULT0', secretAccessKey: 'not-checked-by-the-emulator' },
    maxAttempts: 1,
    requestHandler: { requestTimeout: requestTimeoutMs, connectionTimeout: 2_000, throwOnRequestTimeout: true },
  });
}

/** What a caller can see of a call: the output without its request id, or the error's identity. */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    const out = (await call()) as { $metadata: Record<string, unknown> };
    const { requestId, ...metadata } = out.$metadata;
    assert.match(String(requestId), /^[0-9a-f-]{36}$/);
    return { ok: { ...out, $metadata: metadata } };
  } catch (e) {
    const err = e as {
      name: string;
      message: string;
      $fault?: string;
      $metadata?: { httpStatusCode?: number; requestId?: string };
      Code?: string;
    };
    return {
      error: {
        name: err.name,
        message: err.message,
        fault: err.$fault,
        status: err.$metadata?.httpStatusCode,
        hasRequestId: err.$metadata?.requestId !== undefined,
      },
    };
  }
}

describe('the agent SDK bundle', { timeout: 60_000 }, () => {
  it('exports exactly what src/vip/ec2-sdk.ts exports', () => {
    assert.deepEqual(Object.keys(bundled).sort(), Object.keys(sourceModule).sort());
    for (const name of Object.keys(sourceModule)) assert.equal(typeof bundled[name as keyof Sdk], 'function', name);
  });

  it('keeps only the schemas its commands reach', () => {
    const code = readFileSync(bundlePath, 'utf8');
    const schemas = code.match(/\bvar \w+\$=\[|,\w+\$=\[/g)?.length ?? 0;
    const packageSchemas = readFileSync(packageSchemaFile, 'utf8').match(/^export var \w+\$ = \[/gm)?.length ?? 0;
    assert.ok(packageSchemas > 1_000, `the package holds ${packageSchemas} schemas`);
    assert.ok(schemas > 10 && schemas < packageSchemas / 10, `${schemas} of ${packageSchemas} schemas kept`);
    assert.ok(stats.keysRewritten > 1_000, `${stats.keysRewritten} computed keys inlined`);
  });

  it('answers every call the agent makes as the package does, successes and errors alike', async (t) => {
    const cases: [string, (lib: Sdk, c: sdk.EC2Client) => Promise<unknown>][] = [
      ['describe by address', (lib, c) => c.send(new lib.DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'addresses.private-ip-address', Values: [vip] }] }))],
      ['describe by id', (lib, c) => c.send(new lib.DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [dbA.eni, dbB.eni] }))],
      ['describe an unknown ENI', (lib, c) => c.send(new lib.DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: ['eni-0fff'] }))],
      ['assign without reassignment', (lib, c) => c.send(new lib.AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip] }))],
      ['assign with reassignment', (lib, c) => c.send(new lib.AssignPrivateIpAddressesCommand({ NetworkInterfaceId: dbB.eni, PrivateIpAddresses: [vip], AllowReassignment: true }))],
      ['describe route tables', (lib, c) => c.send(new lib.DescribeRouteTablesCommand({ RouteTableIds: ['rtb-0a1', 'rtb-0b2'] }))],
      ['replace a route', (lib, c) => c.send(new lib.ReplaceRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni }))],
      ['replace a missing route', (lib, c) => c.send(new lib.ReplaceRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni }))],
      ['create a route', (lib, c) => c.send(new lib.CreateRouteCommand({ RouteTableId: 'rtb-0b2', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbB.eni }))],
      ['create an existing route', (lib, c) => c.send(new lib.CreateRouteCommand({ RouteTableId: 'rtb-0a1', DestinationCidrBlock: `${overlayVip}/32`, NetworkInterfaceId: dbA.eni }))],
    ];
    // Each library gets a fresh emulator and runs the same sequence, so state-changing calls see the same state.
    const run = async (lib: Sdk) => {
      const ec2 = await emulatorForTest(t);
      const client = clientOf(lib, ec2.url);
      const results: Record<string, unknown> = {};
      for (const [name, call] of cases) results[name] = await outcome(() => call(lib, client));
      return results;
    };
    const fromPackage = await run(sdk);
    const fromBundle = await run(bundled);
    assert.deepEqual(fromBundle, fromPackage);
    // The sequence did exercise both sides: successes and coded errors.
    const kinds = Object.values(fromPackage).map((r) => Object.keys(r as object)[0]);
    assert.ok(kinds.includes('ok') && kinds.includes('error'));
  });

  it('reports throttling, server errors and hangs as the package does', async (t) => {
    const run = async (lib: Sdk) => {
      const results: unknown[] = [];
      for (const kind of ['throttle', 'internal-error', 'unavailable', 'hang'] as const) {
        const ec2 = await emulatorForTest(t, baseConfig({ faults: { rules: [{ action: '*', kind, count: 1 }] } }));
        const client = clientOf(lib, ec2.url, 300);
        results.push(await outcome(() => client.send(new lib.DescribeNetworkInterfacesCommand({}))));
      }
      return results;
    };
    const fromPackage = await run(sdk);
    assert.deepEqual(await run(bundled), fromPackage);
    assert.deepEqual(fromPackage.map((r) => (r as { error?: { name: string } }).error?.name), ['RequestLimitExceeded', 'InternalError', 'Unavailable', 'TimeoutError']);
  });

  it('finds the instance role through the default credential chain (IMDS), with no keys in its environment', async (t) => {
    // On EC2 the agent builds its client without credentials: the chain's IMDS provider must be in
    // the bundle and work from it (the provider modules are loaded by dynamic import).
    const role = { 'pgvip-agent': { instances: [dbB.instanceId], policy: { Statement: { Effect: 'Allow' as const, Action: 'ec2:DescribeNetworkInterfaces', Resource: '*' } } } };
    const ec2 = await emulatorForTest(t, baseConfig({ iam: { roles: role } }));
    const imds = await startImds({ instanceId: dbB.instanceId, source: ec2 });
    t.after(() => imds.close());
    const script =
      `const m = await import(${JSON.stringify(pathToFileURL(bundlePath).href)});` +
      `const c = new m.EC2Client({ region: ${JSON.stringify(region)}, endpoint: ${JSON.stringify(ec2.url)}, maxAttempts: 1 });` +
      `const out = await c.send(new m.DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [${JSON.stringify(dbB.eni)}] }));` +
      'process.stdout.write(out.NetworkInterfaces[0].NetworkInterfaceId);';
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
    // Asynchronously: the emulator answers from this process.
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { env, cwd: dir, timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, dbB.eni);
    assert.equal(ec2.requests()[0]?.principal, `arn:aws:sts::123456789012:assumed-role/pgvip-agent/${dbB.instanceId}`);
  });

  it('costs a fraction of the package in memory once loaded', () => {
    // Heap in use after a full GC, in a fresh process: independent of machine load, unlike timings.
    const heapAfterImport = (specifier: string): number => {
      const script = `const m = await import(${JSON.stringify(specifier)}); new m.EC2Client({ region: 'us-east-1' }); globalThis.gc(); process.stdout.write(String(process.memoryUsage().heapUsed));`;
      const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: repoRoot, env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', NODE_OPTIONS: '' } });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout) / 1048576;
    };
    const packageMb = heapAfterImport('@aws-sdk/client-ec2');
    const bundleMb = heapAfterImport(pathToFileURL(bundlePath).href);
    assert.ok(bundleMb < packageMb - 5, `heap in use: bundle ${bundleMb.toFixed(1)} MB, package ${packageMb.toFixed(1)} MB`);
  });

  it('inlines only keys that name string constants of the same module', () => {
    const { contents, rewritten } = inlineConstantKeys('const _a = "xmlName";\nconst _b = n0;\nexport var X$ = [3, { [_a]: `x`, [_b]: 1, [_c]: 2 }];\n');
    assert.equal(rewritten, 1);
    assert.match(contents, /\{ "xmlName": `x`, \[_b\]: 1, \[_c\]: 2 \}/);
  });
});
