// Goal: the agent as the build ships it — one bundle of src/main.ts (scripts/bundle-agent.mjs), with
// the chunks of its dynamic imports beside it — is a working daemon: it parses its arguments and
// config with clear errors, starts, serves its HTTP API, and stops on SIGTERM; it carries only the
// slice of the EC2 SDK the agent uses; and the etcd client (etcd3, left to node_modules) is loaded
// only by the etcd backend, and works from the bundle.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatKeyFile, generateKey } from '@pgvip/shared';
import {
  agentEntry,
  asciiSource,
  bundleFiles,
  bundleForNode,
  lazyBuiltinModule,
  lazyBuiltins,
  schemaCompilerMissing,
  type BundleStats,
} from '../../../scripts/bundle-agent.mjs';
import { etcdMissing, startEtcdCluster } from '../../../test/fixtures/etcd-cluster.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

let dir: string;
let bundle: string;
let stats: BundleStats;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pgvip-agent-bundle-'));
  bundle = path.join(dir, 'main.js');
  stats = await bundleForNode({ entry: agentEntry, outfile: bundle });
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function runBundle(args: readonly string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

describe('the bundled agent', { timeout: 120_000 }, () => {
  it('leaves the unused EC2 schemas out', () => {
    const code = bundleFiles(bundle).map((f) => readFileSync(f, 'utf8')).join('\n');
    assert.ok(stats.inputs > 100, `${stats.inputs} modules bundled`);
    assert.ok(stats.keysRewritten > 1_000);
    const schemas = code.match(/\bvar \w+\$=\[|,\w+\$=\[/g)?.length ?? 0;
    assert.ok(schemas > 10 && schemas < 400, `${schemas} EC2 schemas kept (the SDK has ~3,400)`);
    assert.doesNotMatch(code, /RunInstancesRequest\$=/, 'an operation the agent never sends is not in the bundle');
  });

  it('is plain ASCII, so V8 holds its source at one byte a character', () => {
    for (const file of bundleFiles(bundle)) {
      const text = readFileSync(file, 'utf8');
      const at = text.search(/[\u0080-\uffff]/);
      assert.equal(at, -1, `non-ASCII character in ${path.basename(file)}: ${JSON.stringify(text.slice(at - 40, at + 10))}`);
    }
    const code = readFileSync(bundle, 'utf8');
    assert.deepEqual(asciiSource('// a \u2014 b \u{1f600}\nx'), { code: '// a \\u2014 b \\u{1f600}\nx', escaped: 2 });
    // What that is worth, measured in the process that loads the bundle: V8's count of script
    // sources held outside its heap (Node's own modules, and a one-byte source such as this bundle's)
    // plus its heap, where a two-byte source is kept, after a full GC at exit, for main.js and for a
    // copy with one em dash in a comment.
    const probe =
      "import v8 from 'node:v8'; process.on('exit', () => { globalThis.gc(); " +
      "console.log('script-sources', v8.getHeapCodeStatistics().external_script_source_size + v8.getHeapStatistics().used_heap_size); });";
    const sources = (args: string[]): number => {
      const importProbe = ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(probe)}`];
      const r = spawnSync(process.execPath, [...importProbe, ...args], { encoding: 'utf8', timeout: 30_000 });
      const m = /script-sources (\d+)/.exec(r.stdout + r.stderr);
      assert.ok(m, r.stdout + r.stderr);
      return Number(m[1]);
    };
    const dashed = path.join(dir, 'dashed.js');
    writeFileSync(dashed, `// \u2014\n${code}`);
    const extra = sources([dashed, '--help']) - sources([bundle, '--help']);
    assert.ok(extra > stats.bytes * 0.9, `one non-ASCII character costs ${extra} bytes (the bundle is ${stats.bytes})`);
  });

  it('loads no Node built-in it does not use at start: no ES import of one, node:http2 and node:zlib at first use', () => {
    const code = readFileSync(bundle, 'utf8');
    // The banner's import of node:module is the one ES import of a built-in (it evaluates nothing lazy).
    const imports = [...code.matchAll(/(?:from|import)\s*["'](node:[\w/]+)["']/g)].map((m) => m[1]);
    assert.deepEqual(imports, ['node:module'], 'built-ins come from process.getBuiltinModule, not ES imports');
    assert.ok(stats.builtins > 10 && stats.lazyBuiltins === Object.keys(lazyBuiltins).length, JSON.stringify(stats));
    assert.ok(stats.slimPackages >= 1, 'prom-client through its slim entry');
    assert.doesNotMatch(code, /llhttp/, 'no undici (its WebAssembly HTTP parser): the peer client is on node:http');
    // What the process has loaded once every module of the bundle ran (--help exits after that).
    const probe = "process.on('exit', () => console.log('loaded', JSON.stringify(process.moduleLoadList)));";
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(probe)}`, bundle, '--help'], { encoding: 'utf8', timeout: 30_000 });
    const m = /^loaded (.*)$/m.exec(r.stdout);
    assert.ok(m, r.stdout + r.stderr);
    const loaded = (JSON.parse(m[1]!) as string[]).filter((n) => n.startsWith('NativeModule ')).map((n) => n.slice('NativeModule '.length));
    for (const unused of ['http2', 'zlib', 'internal/deps/undici/undici', 'stream/web', 'worker_threads']) {
      assert.ok(!loaded.includes(unused), `${unused} is loaded at start`);
    }
    assert.ok(loaded.includes('http') && loaded.includes('crypto'), 'the probe sees what the agent does load');
  });

  it('stands in for a lazy built-in with its own exports, loading it at first use', () => {
    for (const name of Object.keys(lazyBuiltins)) {
      const real = process.getBuiltinModule(`node:${name}`) as Record<string, unknown>;
      const mod = { exports: {} as Record<string, unknown> };
      new Function('module', 'process', lazyBuiltinModule(name))(mod, process);
      assert.deepEqual(Object.keys(mod.exports).sort(), Object.keys(real).sort(), `node:${name}: the same exports`);
      const { data, functions, known } = lazyBuiltins[name]!;
      for (const key of data) assert.deepEqual(mod.exports[key], real[key], `node:${name}.${key}`);
      for (const key of Object.keys(known)) assert.equal(mod.exports[key], real[key], `node:${name}.${key} as this process has it`);
      const other = Object.keys(real).find((k) => !data.includes(k) && !functions.includes(k) && !(k in known))!;
      assert.equal(mod.exports[other], real[other], `node:${name}.${other} through its getter`);
    }
    const zlib = { exports: {} as Record<string, (...a: unknown[]) => unknown> };
    new Function('module', 'process', lazyBuiltinModule('zlib'))(zlib, process);
    assert.equal(zlib.exports.crc32!('pgvip'), process.getBuiltinModule('node:zlib').crc32('pgvip'));
  });

  it('answers --help and refuses bad arguments and configs with the coded error', () => {
    const help = runBundle(['--help']);
    assert.equal(help.status, 0, help.output);
    assert.match(help.output, /usage: pgvip-agent --config FILE/);
    assert.equal(runBundle(['--bogus']).status, 2);

    const missing = runBundle(['--config', path.join(dir, 'nope.yaml')]);
    assert.equal(missing.status, 2, missing.output);
    assert.match(missing.output, /PGVIP_CONFIG_UNREADABLE/);

    const badFile = path.join(dir, 'bad.yaml');
    writeFileSync(badFile, 'self: db-a\nlisten: { host: 127.0.0.1 }\nstateDir: /tmp\ncluster: { name: 7 }\n');
    const bad = runBundle(['--config', badFile]);
    assert.equal(bad.status, 2, bad.output);
    assert.match(bad.output, /cluster\.name/, 'the error names the field');
  });

  it('starts, serves /health, /status and /metrics, and stops on SIGTERM', async () => {
    const keyFile = path.join(dir, 'cluster.key');
    writeFileSync(keyFile, formatKeyFile(generateKey()), { mode: 0o600 });
    const [agentPort, peerPort, witnessPort, pgPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const configFile = path.join(dir, 'agent.yaml');
    // Nothing listens on the PostgreSQL, peer and witness ports: the agent runs as a node whose
    // server is down and which has no quorum, and must say so rather than fail.
    writeFileSync(
      configFile,
      `self: db-a
listen: { host: 127.0.0.1 }
stateDir: ${path.join(dir, 'state')}
cluster:
  name: orders
  nodes:
    - id: db-a
      agent: { host: 127.0.0.1, port: ${agentPort} }
      postgres: { host: 127.0.0.1, port: ${pgPort}, dataDir: ${path.join(dir, 'pgdata')} }
      vip: { eniId: eni-0aaa }
    - id: db-b
      agent: { host: 127.0.0.1, port: ${peerPort} }
      postgres: { host: 127.0.0.1, port: ${pgPort}, dataDir: ${path.join(dir, 'pgdata')} }
      vip: { eniId: eni-0bbb }
  witness: { host: 127.0.0.1, port: ${witnessPort} }
  vip: { mode: secondary-ip, address: 198.18.1.100, discovery: config, interface: lo, region: us-east-1, prefixLength: 24 }
  auth: { keyFile: ${keyFile} }
`,
    );
    // Every module the daemon resolves (ES and CommonJS), printed at exit: the witness backend's agent
    // must never reach the etcd client.
    const probe =
      "import { registerHooks } from 'node:module'; const seen = []; " +
      'registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } }); ' +
      "process.on('exit', () => console.log('resolved ' + JSON.stringify(seen)));";
    const args = ['--import', `data:text/javascript,${encodeURIComponent(probe)}`, bundle, '--config', configFile];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${agentPort}`;
      const deadline = performance.now() + 20_000;
      let health: Response | undefined;
      while (health === undefined) {
        health = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
        if (health === undefined) {
          assert.ok(child.exitCode === null && performance.now() < deadline, `the agent never listened:\n${output}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      assert.ok([200, 503].includes(health.status), `GET /health: ${health.status}`);
      const status = await fetch(`${base}/status`);
      assert.equal(status.status, 200);
      const body = (await status.json()) as { from?: string; role?: string; promotionBlocker?: string };
      assert.equal(body.from, 'db-a', JSON.stringify(body));
      assert.notEqual(body.role, 'primary');
      assert.equal(body.promotionBlocker, 'postgresql is not running');
      assert.equal((await fetch(`${base}/primary`)).status, 503, 'a node without a lease is never the primary');
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^pgvip_agent_role\{/m);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 15_000))]);
    assert.equal(code, 0, `exit on SIGTERM:\n${output}`);
    assert.match(output, /agent listening/);
    const resolved = JSON.parse(/^resolved (.*)$/m.exec(output)?.[1] ?? 'null') as string[] | null;
    assert.ok(resolved !== null && resolved.some((u) => u.endsWith('/main.js')), output);
    const etcdChunk = bundleFiles(bundle).find((f) => /from\s*"etcd3"/.test(readFileSync(f, 'utf8')))!;
    assert.ok(etcdChunk !== undefined);
    const etcdModules = resolved.filter((u) => u === 'etcd3' || /etcd3|@grpc|protobufjs/.test(u) || u.endsWith(path.basename(etcdChunk)));
    assert.deepEqual(etcdModules, [], 'the witness backend loads no etcd client');
  });

  it('leaves etcd3 to node_modules, imported only by the chunk of the etcd backend', () => {
    const importers = bundleFiles(bundle).filter((f) => /(?:from|import)\s*\(?\s*"etcd3"/.test(readFileSync(f, 'utf8')));
    assert.equal(importers.length, 1, `files that import etcd3: ${importers.map((f) => path.basename(f)).join(', ')}`);
    assert.notEqual(importers[0], bundle, 'main.js does not import etcd3');
    const code = bundleFiles(bundle).map((f) => readFileSync(f, 'utf8')).join('\n');
    assert.doesNotMatch(code, /rpc\.proto|@grpc\/grpc-js|protobufjs/, 'no gRPC or protobufjs inside the bundle');
    assert.ok(stats.chunks >= 1 && stats.bytes < 2_000_000, JSON.stringify(stats));
  });

  it('leaves fastify\'s schema compilers out, and says so if a route declares a schema', async () => {
    const code = bundleFiles(bundle).map((f) => readFileSync(f, 'utf8')).join('\n');
    assert.doesNotMatch(code, /ajv-formats|fast-json-stringify\/lib\/validator|class Ajv\b/, 'no Ajv, ajv-formats or fast-json-stringify');
    // Beside node_modules, where fastify is found.
    const cache = path.join(repoRoot, 'node_modules/.cache');
    mkdirSync(cache, { recursive: true });
    const work = mkdtempSync(path.join(cache, 'pgvip-schema-bundle-'));
    after(() => rmSync(work, { recursive: true, force: true }));
    const entry = path.join(work, 'schema-route.ts');
    writeFileSync(
      entry,
      [
        "import Fastify from 'fastify';",
        'const app = Fastify();',
        "app.get('/x', { schema: { querystring: { type: 'object' } } }, async () => 'x');",
        "await app.ready().then(() => console.log('ready'), (e: Error) => console.log(`refused: ${e.message}`));",
      ].join('\n'),
    );
    const outfile = path.join(work, 'main.js');
    await bundleForNode({ entry, outfile });
    const r = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 30_000 });
    assert.ok(r.stdout.includes(`refused: validator: ${schemaCompilerMissing}`), r.stdout + r.stderr);
  });
});

describe('the bundled etcd client', { timeout: 120_000, skip: etcdMissing() }, () => {
  it('loads etcd3 from node_modules, reads its protos and talks to a loopback etcd', async (t) => {
    const etcd = await startEtcdCluster(t, { members: 1 });
    // Bundled with the agent's options, beside node_modules as the release has it (etcd3 is
    // resolved from there); the etcd client comes in through a dynamic import, as the daemon's.
    const cache = path.join(repoRoot, 'node_modules/.cache');
    mkdirSync(cache, { recursive: true });
    const work = mkdtempSync(path.join(cache, 'pgvip-etcd-bundle-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    const entry = path.join(work, 'entry.ts');
    const client = path.join(repoRoot, 'packages/agent/src/quorum/etcd/client.ts');
    writeFileSync(
      entry,
      [
        `const { EtcdQuorum } = await import(${JSON.stringify(client)});`,
        `const q = new EtcdQuorum({ endpoints: ${JSON.stringify(etcd.endpoints)}, prefix: '/pgvip', cluster: 'orders', timeoutMs: 5000 });`,
        'const members = await q.readMembers();',
        'const lease = await q.grantLease(10_000);',
        'console.log(JSON.stringify({ members, lease: lease.ok }));',
        'await q.close();',
      ].join('\n'),
    );
    const outfile = path.join(work, 'main.js');
    const etcdStats = await bundleForNode({ entry, outfile });
    assert.ok(etcdStats.chunks >= 1, 'the etcd client is a chunk of its own');
    const r = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { members: { ok: boolean; members: unknown[] }; lease: boolean };
    assert.deepEqual(out, { members: { ok: true, members: [], bad: [] }, lease: true });
  });
});
