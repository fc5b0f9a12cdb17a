/** Writes config/example.yaml and docs/configuration.md from the schema (`npm run gen:config-docs`). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigurationMarkdown, renderExampleYaml } from './docs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
writeFileSync(`${root}config/example.yaml`, renderExampleYaml());
writeFileSync(`${root}docs/configuration.md`, renderConfigurationMarkdown());
process.stdout.write('wrote config/example.yaml and docs/configuration.md\n');
