// `node scripts/bundle-agent-sdk.mjs` (run by `npm run build`, the test runner and the release after
// `tsc -b`): replaces the agent's compiled packages/agent/dist/vip/ec2-sdk.js with an esbuild bundle
// of just what it exports from @aws-sdk/client-ec2.
//
// Why: the package's Node entry (dist-cjs/index.js) is one 2 MB file with every EC2 operation and
// ~3,400 shape schemas, all built on load — ~21 MB of the agent's resident memory and ~0.5 s of its
// start-up, for five operations. The package also ships ES modules (dist-es, one file per command),
// which a bundler can tree-shake down to the schemas those five commands reach.
//
// One obstacle, removed by the plugin below: the schemas are array literals whose member-trait
// objects use computed keys naming module constants, `{ [_xN]: "..." }` with `const _xN =
// "xmlName"`. A bundler must assume a computed key may run code (a key's toString), so it keeps
// every schema. Rewriting each such key to the string literal the constant holds is exact — the
// constants are string literals — and leaves the literals free of side effects, so the unused ones
// are dropped. The build fails loudly if an SDK upgrade changes that layout (nothing rewritten),
// rather than shipping an agent 20 MB larger without a word; test/agent-sdk-bundle.test.ts checks
// the result.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const agentSdkEntry = path.join(repoRoot, 'packages/agent/src/vip/ec2-sdk.ts');
export const agentSdkBundle = path.join(repoRoot, 'packages/agent/dist/vip/ec2-sdk.js');

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

/** Bundles the agent's EC2 SDK module into `outfile`; returns what it did. */
export async function bundleAgentSdk({ outfile = agentSdkBundle } = {}) {
  const stats = { schemaModules: 0, keysRewritten: 0, bytes: 0 };
  const temporary = `${outfile}.${process.pid}.tmp`;
  try {
    const result = await esbuild.build({
      entryPoints: [agentSdkEntry],
      outfile: temporary,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // dist-es (the "module" field) is what can be tree-shaken; packages without one bring CommonJS.
      mainFields: ['module', 'main'],
      // Bundled CommonJS that requires Node built-ins needs a real require in an ES module.
      banner: { js: "import { createRequire as __pgvipCreateRequire } from 'node:module';\nconst require = __pgvipCreateRequire(import.meta.url);" },
      sourcemap: true,
      legalComments: 'eof',
      metafile: true,
      logLevel: 'warning',
      plugins: [constantKeysPlugin(stats)],
    });
    stats.bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined)?.bytes ?? 0;
  } catch (e) {
    rmSync(temporary, { force: true });
    rmSync(`${temporary}.map`, { force: true });
    throw e;
  }
  if (stats.schemaModules === 0 || stats.keysRewritten === 0) {
    rmSync(temporary, { force: true });
    rmSync(`${temporary}.map`, { force: true });
    throw new Error(
      `bundle-agent-sdk: no schema keys were rewritten (${stats.schemaModules} schema modules seen). ` +
        '@aws-sdk/client-ec2 changed the layout of dist-es/schemas; update inlineConstantKeys() in scripts/bundle-agent-sdk.mjs, ' +
        'or the agent loads every EC2 schema (~20 MB more memory).',
    );
  }
  // The source map names the temporary file; point it at the final one.
  const map = JSON.parse(await readFile(`${temporary}.map`, 'utf8'));
  map.file = path.basename(outfile);
  writeFileSync(`${temporary}.map`, JSON.stringify(map));
  const code = await readFile(temporary, 'utf8');
  writeFileSync(temporary, code.replace(/\/\/# sourceMappingURL=.*$/m, `//# sourceMappingURL=${path.basename(outfile)}.map`));
  renameSync(`${temporary}.map`, `${outfile}.map`);
  renameSync(temporary, outfile);
  return stats;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const stats = await bundleAgentSdk();
    console.log(`bundle-agent-sdk: ${path.relative(repoRoot, agentSdkBundle)} ${(stats.bytes / 1024).toFixed(0)} KiB (${stats.keysRewritten} schema keys inlined in ${stats.schemaModules} modules)`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
