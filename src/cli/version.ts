/**
 * The package's version, read from its package.json at run time: one number for `--version`, the tarball name and
 * the docs. The file is two levels up from both src/cli/ (tsx) and dist/cli/ (the installed package).
 */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
