/**
 * Loads the configuration: file (from --config, XOAUTH2_RELAY_CONFIG or the default path), YAML, schema,
 * cross-field checks and referenced files, collecting every problem in one pass. The result is frozen.
 */
import { readFileSync, accessSync, constants } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parseDocument } from 'yaml';
import { RelayError } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { formatPath, problemsFromIssues, showValue, type ConfigProblem } from './problems.js';
import { keyPairProblems } from './key-pairs.js';
import { relationProblems } from './relations.js';
import { yamlSyntaxProblem } from './yaml-syntax.js';

export const DEFAULT_CONFIG_PATH = '/etc/xoauth2-relay/config.yaml';

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file it came from. */
  path: string;
}

/** The config file path: the `--config` option, else XOAUTH2_RELAY_CONFIG, else the default. */
export function configPath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(option ?? env.XOAUTH2_RELAY_CONFIG ?? DEFAULT_CONFIG_PATH);
}

export type CheckResult = { ok: true; loaded: LoadedConfig } | { ok: false; path: string; problems: ConfigProblem[] };

/** Reads and checks the file, returning every problem found (never throws for config mistakes). */
export function checkConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): CheckResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? 'error'})`;
    return { ok: false, path, problems: [{ path: '(file)', shown: JSON.stringify(path), message, hint: 'pass --config FILE or set XOAUTH2_RELAY_CONFIG; `xoauth2-relay sandbox` prints a config to start from' }] };
  }
  return checkConfigText(text, path, env);
}

/** Like checkConfigFile, for text already read. Relative file paths in the config are resolved against its folder. */
export function checkConfigText(text: string, path: string, env: NodeJS.ProcessEnv = process.env): CheckResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: false, path, problems: [yamlSyntaxProblem(doc.errors, text)] };
  let input: unknown;
  try {
    input = doc.toJS() ?? {};
  } catch (err) {
    // toJS throws for an alias without its anchor (`*x`) or one expanded past yaml's limit (a billion laughs),
    // which the parser does not report as errors: one problem like a syntax error, never an internal error.
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, path, problems: [{ path: '(syntax) the file', shown: undefined, message, hint: 'define each anchor (&name) before its aliases (*name), and do not nest aliases to blow the file up' }] };
  }
  const parsed = configSchema.safeParse(input);
  const problems = [...(parsed.success ? [] : problemsFromIssues(input, parsed.error.issues)), ...relationProblems(input)];
  if (!parsed.success || problems.length > 0) return { ok: false, path, problems };

  const config = resolveFilePaths(parsed.data, dirname(path));
  problems.push(...referencedFileProblems(config, input, env));
  if (problems.length > 0) return { ok: false, path, problems };
  problems.push(...keyPairProblems(config, input));
  if (problems.length > 0) return { ok: false, path, problems };
  return { ok: true, loaded: { config: deepFreeze(config), path } };
}

/** Loads the config or throws one RelayError listing every problem (for commands other than check-config). */
export function loadConfig(option?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = configPath(option, env);
  const result = checkConfigFile(path, env);
  if (result.ok) return result.loaded;
  const lines = result.problems.map((p) => `  ${p.path}${p.shown === undefined ? '' : ` = ${p.shown}`}: ${p.message}`);
  throw new RelayError('CONFIG_INVALID', `${path}:\n${lines.join('\n')}`);
}

const fileKeys = ['clientSecretFile', 'certificateFile', 'privateKeyFile', 'extraCaFile', 'certFile', 'keyFile'] as const;

function resolveFilePaths(config: Config, base: string): Config {
  const abs = (p: string | null) => (p === null || isAbsolute(p) ? p : resolve(base, p));
  return {
    ...config,
    stateDir: isAbsolute(config.stateDir) ? config.stateDir : resolve(base, config.stateDir),
    identity: { ...config.identity, extraCaFile: abs(config.identity.extraCaFile) },
    upstreamTls: { extraCaFile: abs(config.upstreamTls.extraCaFile) },
    tls: { ...config.tls, certFile: abs(config.tls.certFile), keyFile: abs(config.tls.keyFile) },
    accounts: Object.fromEntries(
      Object.entries(config.accounts).map(([name, a]) => [
        name,
        { ...a, clientSecretFile: abs(a.clientSecretFile), certificateFile: abs(a.certificateFile), privateKeyFile: abs(a.privateKeyFile) },
      ]),
    ),
  };
}

/** Every file the config names must be readable now, and every env reference set: found at check time, not at 3 a.m. */
function referencedFileProblems(config: Config, input: unknown, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const check = (path: PropertyKey[], file: string | null) => {
    if (file === null) return;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push({
        path: formatPath(path),
        shown: showValue(input, path) ?? JSON.stringify(file),
        message: code === 'ENOENT' ? `names a file that does not exist (${file})` : `names a file that cannot be read (${code ?? 'error'})`,
        hint: 'check the path, and that the service user may read the file',
      });
    }
  };
  for (const [name, a] of Object.entries(config.accounts)) {
    for (const key of fileKeys) {
      if (key in a) check(['accounts', name, key], (a as unknown as Record<string, string | null>)[key] ?? null);
    }
    if (a.clientSecretEnv !== null && !env[a.clientSecretEnv]) {
      problems.push({ path: `accounts.${name}.clientSecretEnv`, shown: JSON.stringify(a.clientSecretEnv), message: 'names an environment variable that is not set', hint: `set ${a.clientSecretEnv} in the service environment (systemd: Environment= or EnvironmentFile=)` });
    }
  }
  check(['identity', 'extraCaFile'], config.identity.extraCaFile);
  check(['upstreamTls', 'extraCaFile'], config.upstreamTls.extraCaFile);
  check(['tls', 'certFile'], config.tls.certFile);
  check(['tls', 'keyFile'], config.tls.keyFile);
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
