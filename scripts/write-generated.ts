/**
 * Writes the files generated from the option specs (recipes/recipe.schema.json, docs/cli.md) and the stage
 * record's JSON Schema (docs/stage-record.schema.json).
 * Run after changing an option or a command's help: `npx tsc && node dist/scripts/write-generated.js`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { CLI_DOCS_FILE, cliDocsText, RECIPE_SCHEMA_FILE, recipeSchemaText, STAGE_RECORD_SCHEMA_FILE, stageRecordSchemaText } from '../ts/options/generated.js';

const root = join(import.meta.dirname, '..', '..');
writeFileSync(join(root, RECIPE_SCHEMA_FILE), recipeSchemaText());
writeFileSync(join(root, CLI_DOCS_FILE), cliDocsText());
writeFileSync(join(root, STAGE_RECORD_SCHEMA_FILE), stageRecordSchemaText());
console.log(`wrote ${RECIPE_SCHEMA_FILE}, ${CLI_DOCS_FILE} and ${STAGE_RECORD_SCHEMA_FILE}`);
