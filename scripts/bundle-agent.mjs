// `node scripts/bundle-agent.mjs` (run by scripts/build.mjs after `tsc -b`): replaces the agent's
// compiled entry, packages/agent/dist/main.js, with one esbuild bundle of the daemon and every
// module it runs — @pgvip/shared, fastify, pg, zod, pino, the EC2 SDK — tree-shaken, with
// whitespace and syntax minified. Identifiers keep their names, so stack traces still name the
// functions; main.js.map maps them back to the sources (`--enable-source-maps`).
//
// Why: the agent is meant to sit in a few tens of MB beside PostgreSQL, and V8 keeps the source text
// of every module it loads in the heap, plus code and objects for every module body it runs. Loaded
// as ~600 separate files, the daemon's modules cost ~30 MB of anonymous memory; as one tree-shaken,
// minified file ~24 MB (measured after a full GC; bench:agent has the running figures).
//
// What is not in main.js: modules the daemon loads by dynamic import() (the etcd quorum, which the
// agent loads only when `quorum.backend: etcd`; the SDK's credential providers) go into chunk files,
// dist/chunks/*.js, read only when imported; a witness cluster's agent never holds their source. And
// `etcd3` stays external, loaded from node_modules (the release ships the agent's production
// dependencies): it reads its .proto files at load from its own directory (`__dirname/../proto`),
// which an ES module bundle has no equivalent of, and brings gRPC and protobufjs (~650 KB of source).
//
// The largest single saving is the EC2 SDK. Its Node entry (dist-cjs/index.js) is one 2 MB file with
// every EC2 operation and ~3,400 shape schemas, all built on load (~21 MB), for the five operations
// the agent sends. Its ES modules (dist-es) tree-shake — once the plugin below removes one obstacle:
// the schemas are array literals whose member-trait objects use computed keys naming module
// constants, `{ [_xN]: "..." }` with `const _xN = "xmlName"`. A bundler must assume a computed key
// may run code (a key's toString), so it keeps every schema. Rewriting each such key to the string
// literal the constant holds is exact — the constants are string literals — and leaves the literals
// free of side effects, so the unused ones are dropped. The build fails loudly if an SDK upgrade
// changes that layout (nothing rewritten), rather than shipping an agent 20 MB larger without a word.
// packages/agent/test/ec2-sdk-bundle.test.ts checks, with these same options, that the SDK so
// bundled answers every call as the package does; test/agent-bundle.test.ts runs the bundle itself.
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const agentEntry = path.join(repoRoot, 'packages/agent/src/main.ts');
export const agentBundle = path.join(repoRoot, 'packages/agent/dist/main.js');

const schemaModule = /[\\/]@aws-sdk[\\/][^\\/]+[\\/]dist-es[\\/](?:submodules[\\/][^\\/]+[\\/])?schemas[\\/]schemas_\d+\.js$/;

/** Rewrites `[_name]:` to `"value":` wherever `const _name = "value";` is declared in the module. */
export function inlineConstantKeys(source) {
  const constants = new Map();
  for (const m of source.matchAll(/^const (_\w+) = ("[^"\\\n]*");$/gm)) constants.set(m[1], m[2]);
  let rewritten = 0;
  const contents = source.replace(/\[(_\w+)\]:/g, (whole, name) => {
    const value = constants.get(name);
    if (value === undefined) return whole;
    rewritten++;
    return `${value}:`;
  });
  return { contents, rewritten };
}

/**
 * The bundle as pure ASCII: every character above U+007F written as its `\\u` escape.
 *
 * Why: V8 keeps a script's source text for as long as the script lives (it compiles functions
 * lazily, from the source), and Node decodes a module file to a one-byte string only when every
 * character fits in Latin-1; one other character and the whole 4 MB bundle is held as a two-byte
 * string, 8 MB. esbuild already escapes non-ASCII characters in strings, regular expressions and
 * identifiers (its default charset is ascii), but copies comments it keeps (the entry file's header,
 * licence comments) as they are: one em dash in main.ts's header cost the agent 4 MB of memory
 * (measured with v8.getHeapCodeStatistics().external_script_source_size). What is left to escape
 * is therefore only comment text, where an escape changes nothing; columns after it shift, but no
 * mapping points into a comment.
 */
export function asciiSource(source) {
  let escaped = 0;
  const code = source.replace(/[\u0080-\u{10ffff}]/gu, (ch) => {
    escaped++;
    const cp = ch.codePointAt(0);
    return cp > 0xffff ? `\\u{${cp.toString(16)}}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
  return { code, escaped };
}

function constantKeysPlugin(stats) {
  return {
    name: 'pgvip-inline-schema-keys',
    setup(build) {
      build.onLoad({ filter: schemaModule }, async (args) => {
        const { contents, rewritten } = inlineConstantKeys(await readFile(args.path, 'utf8'));
        stats.keysRewritten += rewritten;
        stats.schemaModules++;
        return { contents, loader: 'js' };
      });
    },
  };
}

/** The message of a left-out fastify schema compiler (see slimEntries), when a route asks for it. */
export const schemaCompilerMissing =
  'a route of the agent declares a JSON schema, but the agent bundle leaves fastify\'s schema compilers out ' +
  '(scripts/bundle-agent.mjs, slimEntries): check the request with zod as the other routes do, or take the compilers back in';

function schemaCompilerStandIn(selector, what) {
  return [
    `module.exports = function ${selector}() {`,
    `  return function build${what[0].toUpperCase()}${what.slice(1)}() { throw new Error(${JSON.stringify(`${what}: `)} + ${JSON.stringify(schemaCompilerMissing)}); };`,
    '};',
  ].join('\n');
}

/**
 * The parts of CommonJS packages the agent uses, as ES modules, so that the bundle runs only those
 * parts' module bodies. A package entry (index.js) requires everything the package has:
 * prom-client's loads its push gateway (node:https, node:zlib) and its cluster aggregator
 * (node:cluster), where the agent needs Registry, Counter, Gauge and Histogram. Written as ES
 * modules: a name the agent imports that a slim entry does not export fails the build, rather than
 * reaching the daemon as undefined. Paths are relative to the package (its "exports" map does not
 * list lib/): the same files, at the installed version.
 */
export const slimEntries = {
  // fastify builds its JSON-schema validator (Ajv, ajv-formats) and serializer (fast-json-stringify)
  // only for routes that declare a `schema`, and none of the agent's does (its wire messages are
  // checked with zod), but it requires both packages when it starts: ~770 KB of source and their
  // module bodies, ~2.5 MB of the agent's memory (measured). They are left out; a route that
  // declares a schema fails when it is registered, naming the fix, rather than running unchecked.
  '@fastify/ajv-compiler': schemaCompilerStandIn('ValidatorSelector', 'validator'),
  '@fastify/fast-json-stringify-compiler': schemaCompilerStandIn('SerializerSelector', 'serializer'),
  'prom-client': [
    "import Registry from './lib/registry.js';",
    "import Counter from './lib/counter.js';",
    "import Gauge from './lib/gauge.js';",
    "import Histogram from './lib/histogram.js';",
    'export { Registry, Counter, Gauge, Histogram };',
  ].join('\n'),
  // pino's transports run in worker threads; pino loads thread-stream (and with it node:worker_threads)
  // at its own load, the agent asks for no transport. CommonJS, as pino requires it: the real module
  // is required at the first transport.
  'thread-stream': [
    'let Real;',
    "module.exports = function ThreadStream(...args) { Real ??= require('./index.js'); return new Real(...args); };",
  ].join('\n'),
};

/**
 * Node built-ins the bundle refers to but the agent does not use, each loaded at its first use
 * instead of at start: node:http2 (fastify's HTTP/2 support and the SDK's HTTP/2 handler, neither
 * of which the agent asks for) and node:zlib (the SDK's CRC-32 checksums, for
 * operations the agent never sends). On Node 24 these two cost the agent ~5 MB of resident memory.
 * What some module reads at load stands in for the real thing until then: `data`, exports of plain
 * values, copied from the Node that builds (the pinned one the release ships; the SDK's HTTP/2
 * handler reads http2.constants at load); `functions`, exports called through a stand-in that loads the module
 * at its first call (the SDK checks `typeof zlib.crc32` at load); `known`, exports whose value in the
 * agent is known without asking (pino reads worker_threads.isMainThread at load: the bundle is a
 * process's entry script, never a worker's, so it is true). Every other export is a getter that
 * loads the module.
 */
export const lazyBuiltins = {
  http2: { data: ['constants'], functions: [], known: {} },
  zlib: { data: [], functions: ['crc32'], known: {} },
  worker_threads: { data: [], functions: [], known: { isMainThread: true } },
};

/** The stand-in module for the lazy built-in `name` (see lazyBuiltins). */
export function lazyBuiltinModule(name) {
  const real = process.getBuiltinModule(`node:${name}`);
  const { data, functions, known } = lazyBuiltins[name];
  const lines = ['let real;', `const load = () => (real ??= process.getBuiltinModule('node:${name}'));`];
  for (const key of data) {
    const json = JSON.stringify(real[key]);
    if (JSON.stringify(JSON.parse(json)) !== json || typeof real[key] !== 'object') throw new Error(`node:${name}.${key} is not plain data`);
    lines.push(`module.exports[${JSON.stringify(key)}] = ${json};`);
  }
  for (const key of functions) {
    if (typeof real[key] !== 'function') throw new Error(`node:${name}.${key} is not a function`);
    lines.push(`module.exports[${JSON.stringify(key)}] = function ${key}(...args) { return load()[${JSON.stringify(key)}](...args); };`);
  }
  for (const [key, value] of Object.entries(known)) {
    if (!(key in real)) throw new Error(`node:${name} has no export ${key}`);
    lines.push(`module.exports[${JSON.stringify(key)}] = ${JSON.stringify(value)};`);
  }
  // A getter per other export: esbuild's interop lists a CommonJS module's keys and descriptors at
  // import, which must not load it.
  const rest = Object.keys(real).filter((k) => !data.includes(k) && !functions.includes(k) && !(k in known));
  lines.push(`for (const key of ${JSON.stringify(rest)}) {`);
  lines.push('  Object.defineProperty(module.exports, key, { get: () => load()[key], enumerable: true });');
  lines.push('}');
  return lines.join('\n');
}

function slimPackagesPlugin(stats) {
  return {
    name: 'pgvip-slim-packages',
    setup(build) {
      const filter = new RegExp(`^(?:${Object.keys(slimEntries).map((n) => n.replace(/[-/]/g, '\\$&')).join('|')})$`);
      build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'pgvip-slim' }));
      build.onLoad({ filter: /.*/, namespace: 'pgvip-slim' }, (args) => {
        stats.slimPackages++;
        return { contents: slimEntries[args.path], loader: 'js', resolveDir: path.join(repoRoot, 'node_modules', args.path) };
      });
    },
  };
}

/**
 * Every Node built-in the bundle refers to (`x` or `node:x`) becomes a small module of the bundle
 * that takes it from process.getBuiltinModule, as CommonJS code gets it from require: the bundle
 * holds no ES import of a built-in. Why: on Node 24 an ES import of a built-in evaluates every
 * export of it to fill the module namespace, lazy getters included, and node:http's lazy getters
 * (WebSocket, ...) load Node's own fetch and WebSocket (its internal undici), node:http2, node:zlib,
 * node:tls and node:worker_threads; node:util's load node:worker_threads. Measured: an ES module
 * that imports node:http loads 173 built-in modules, a CommonJS one that requires it 107. process.getBuiltinModule
 * rather than require, so that esbuild sees no import to follow. The lazy built-ins (lazyBuiltins)
 * get their stand-in instead.
 */
/**
 * Built-ins of which merely reading a property descriptor loads another module: every descriptor of
 * node:util, as esbuild's interop reads them for an ES import of it, loads node:worker_threads (for
 * util.setTraceSigInt). They come as an object whose prototype is the module: every property reads
 * through, and the interop finds no own property to describe.
 */
export const describedThroughPrototype = ['util'];

function builtinsPlugin(stats) {
  return {
    name: 'pgvip-builtins',
    setup(build) {
      // Built-ins listed with their prefix (node:sqlite, node:test) exist only under it.
      const alternatives = builtinModules.map((n) => (n.startsWith('node:') ? n : `(?:node:)?${n}`).replace(/[/]/g, '\\/'));
      const builtin = new RegExp(`^(?:${alternatives.join('|')})$`);
      build.onResolve({ filter: builtin }, (args) => ({ path: args.path.replace(/^node:/, ''), namespace: 'pgvip-builtin' }));
      build.onLoad({ filter: /.*/, namespace: 'pgvip-builtin' }, (args) => {
        if (Object.hasOwn(lazyBuiltins, args.path)) {
          stats.lazyBuiltins++;
          return { loader: 'js', contents: lazyBuiltinModule(args.path) };
        }
        stats.builtins++;
        const get = `process.getBuiltinModule('node:${args.path}')`;
        return { loader: 'js', contents: `module.exports = ${describedThroughPrototype.includes(args.path) ? `Object.create(${get})` : get};` };
      });
    },
  };
}

/** Packages the bundle leaves to node_modules (see the header), which the release must ship. */
export const externalPackages = ['etcd3'];
/** pg's optional native binding: required only if asked for, never installed. */
const optionalPackages = ['pg-native'];

/** The directory, next to the entry's output file, that holds the chunks of its dynamic imports. */
export const chunkDir = 'chunks';

/** Every JavaScript file of the bundle whose entry is `outfile`: the entry, then its chunks. */
export function bundleFiles(outfile) {
  const chunks = path.join(path.dirname(outfile), chunkDir);
  const names = existsSync(chunks) ? readdirSync(chunks).filter((f) => f.endsWith('.js')).sort() : [];
  return [outfile, ...names.map((f) => path.join(chunks, f))];
}

/**
 * Bundles `entry` (TypeScript or JavaScript) into the ES module `outfile` (+ .map), with the chunks
 * of its dynamic imports in `chunks/` beside it, with the agent's options; the output appears only
 * when complete (the previous chunks directory is replaced). Returns what it did.
 */
export async function bundleForNode({ entry, outfile }) {
  const stats = { schemaModules: 0, keysRewritten: 0, bytes: 0, inputs: 0, nonAsciiEscaped: 0 };
  Object.assign(stats, { slimPackages: 0, builtins: 0, lazyBuiltins: 0, chunks: 0, chunkBytes: 0 });
  const outdir = path.dirname(outfile);
  // Built whole in a directory of its own, with the final file names (the source maps and the
  // chunks' import paths name them), then moved into place.
  const staging = path.join(outdir, `.bundle-${process.pid}.tmp`);
  const discard = () => rmSync(staging, { recursive: true, force: true });
  discard();
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      outdir: staging,
      entryNames: path.basename(outfile, '.js'),
      chunkNames: `${chunkDir}/[name]-[hash]`,
      splitting: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // Workspace packages from their sources; dist-es (the "module" field) is what tree-shakes.
      conditions: ['pgvip-source'],
      mainFields: ['module', 'main'],
      external: [...externalPackages, ...optionalPackages],
      // Bundled CommonJS that requires Node built-ins needs a real require in an ES module.
      banner: { js: "import { createRequire as __pgvipCreateRequire } from 'node:module';\nconst require = __pgvipCreateRequire(import.meta.url);" },
      minifyWhitespace: true,
      minifySyntax: true,
      sourcemap: true,
      legalComments: 'eof',
      metafile: true,
      logLevel: 'warning',
      plugins: [constantKeysPlugin(stats), slimPackagesPlugin(stats), builtinsPlugin(stats)],
    });
    // Chunks of dynamic imports are entry points too in the metafile: the entry is known by its name.
    const entryFile = path.join(staging, path.basename(outfile));
    for (const [file, output] of Object.entries(result.metafile.outputs)) {
      if (!file.endsWith('.js')) continue;
      if (path.resolve(file) === entryFile) stats.bytes = output.bytes;
      else {
        stats.chunks++;
        stats.chunkBytes += output.bytes;
      }
    }
    stats.inputs = Object.keys(result.metafile.inputs).length;
  } catch (e) {
    discard();
    throw e;
  }
  if (stats.schemaModules > 0 && stats.keysRewritten === 0) {
    discard();
    throw new Error(
      `no EC2 schema keys were rewritten (${stats.schemaModules} schema modules seen): ` +
        '@aws-sdk/client-ec2 changed the layout of dist-es/schemas; update inlineConstantKeys() in scripts/bundle-agent.mjs, ' +
        'or the agent loads every EC2 schema (~20 MB more memory).',
    );
  }
  const staged = path.join(staging, path.basename(outfile));
  for (const file of bundleFiles(staged)) {
    const { code, escaped } = asciiSource(readFileSync(file, 'utf8'));
    stats.nonAsciiEscaped += escaped;
    writeFileSync(file, code);
  }
  rmSync(path.join(outdir, chunkDir), { recursive: true, force: true });
  if (existsSync(path.join(staging, chunkDir))) renameSync(path.join(staging, chunkDir), path.join(outdir, chunkDir));
  renameSync(`${staged}.map`, `${outfile}.map`);
  renameSync(staged, outfile);
  discard();
  return stats;
}

/** Replaces dist/main.js with the bundle; fails when the EC2 schemas were not tree-shaken. */
export async function bundleAgent() {
  const stats = await bundleForNode({ entry: agentEntry, outfile: agentBundle });
  if (stats.schemaModules === 0) throw new Error('the agent bundle holds no EC2 schema module: is src/vip/ec2-sdk.ts still imported?');
  return stats;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const stats = await bundleAgent();
    console.log(
      `bundle-agent: ${path.relative(repoRoot, agentBundle)} ${(stats.bytes / 1024).toFixed(0)} KiB and ${stats.chunks} chunks ` +
        `(${(stats.chunkBytes / 1024).toFixed(0)} KiB, loaded at first use) from ${stats.inputs} modules (${stats.keysRewritten} EC2 schema keys inlined)`,
    );
  } catch (e) {
    console.error(`bundle-agent: ${e instanceof Error ? e.message : e}`);
    process.exit(1);
  }
}
