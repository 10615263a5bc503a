// Regenerates docs/configuration.md from the schema: `npm run docs:config`.
import { writeFileSync } from 'node:fs';
import { parseCommandLine } from '../../../../scripts/cli-args.mjs';
import { configReferencePath, describeConfigSchema } from './reference.js';

parseCommandLine({ usage: `usage: npm run docs:config   (rewrites ${configReferencePath} from the config schema)` });
// This file sits in packages/shared/{src,dist}/config/, four levels below the repository root.
const target = new URL(`../../../../${configReferencePath}`, import.meta.url);
writeFileSync(target, describeConfigSchema());
console.log(`wrote ${configReferencePath}`);
