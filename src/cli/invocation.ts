/**
 * How the person at the terminal runs this CLI, for the commands we print for them to type. In a checkout,
 * `npm ci` puts no `xoauth2-relay` on PATH, so they type `npx xoauth2-relay` (npm runs the project's own bin);
 * installed from the tarball (`npm install -g ./xoauth2-relay-<v>.tgz`) the package sits under a node_modules
 * folder and the bare name is on PATH.
 */
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export function cliCommand(): string {
  const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
  return packageRoot.split(sep).includes('node_modules') ? 'xoauth2-relay' : 'npx xoauth2-relay';
}
