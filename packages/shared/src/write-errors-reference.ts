// `npm run docs:errors`: rewrite docs/errors.md from the catalogue.
import { writeFileSync } from 'node:fs';
import { errorsReferencePath, renderErrorsReference } from './errors-reference.js';

writeFileSync(errorsReferencePath, renderErrorsReference());
console.log(`wrote ${errorsReferencePath}`);
