// `npm run docs:errors`: rewrite docs/errors.md from the catalogue.
import { writeFileSync } from 'node:fs';
import { parseCommandLine } from '../../../scripts/cli-args.mjs';
import { errorsReferencePath, renderErrorsReference } from './errors-reference.js';

parseCommandLine({ usage: `usage: npm run docs:errors   (rewrites ${errorsReferencePath} from the error catalogue)` });

writeFileSync(errorsReferencePath, renderErrorsReference());
console.log(`wrote ${errorsReferencePath}`);
