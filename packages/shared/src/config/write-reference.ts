// Regenerates docs/configuration.md from the schema: `npm run docs:config`.
import { writeFileSync } from 'node:fs';
import { configReferencePath, describeConfigSchema } from './reference.js';

// This file sits in packages/shared/{src,dist}/config/, four levels below the repository root.
const target = new URL(`../../../../${configReferencePath}`, import.meta.url);
writeFileSync(target, describeConfigSchema());
console.log(`wrote ${configReferencePath}`);
