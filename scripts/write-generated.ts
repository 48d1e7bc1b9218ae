/**
 * Writes the files generated from the option specs: recipes/recipe.schema.json and docs/cli.md.
 * Run after changing an option or a command's help: `npx tsc && node dist/scripts/write-generated.js`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { CLI_DOCS_FILE, cliDocsText, RECIPE_SCHEMA_FILE, recipeSchemaText } from '../ts/options/generated.js';

const root = join(import.meta.dirname, '..', '..');
writeFileSync(join(root, RECIPE_SCHEMA_FILE), recipeSchemaText());
writeFileSync(join(root, CLI_DOCS_FILE), cliDocsText());
console.log(`wrote ${RECIPE_SCHEMA_FILE} and ${CLI_DOCS_FILE}`);
