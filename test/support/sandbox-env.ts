/**
 * A sandbox world for tests: the identity simulator over HTTPS, a temp state dir, a config that points at
 * both, and a logger whose every line (at trace level) is kept so tests can assert no secret was logged.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkConfigText } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import type { Logger } from '../../src/log.js';
import { startIdentitySimulator, type IdentitySimulator, type IdentitySimulatorOptions } from '../../src/sandbox/identity/simulator.js';
import { sandboxConfig } from '../../src/sandbox/sandbox-config.js';
import { memoryLogger } from './memory-logger.js';

export interface SandboxEnv {
  sim: IdentitySimulator;
  dir: string;
  configFile: string;
  config: Config;
  logger: Logger;
  /** Every log line written so far. */
  logText(): string;
  close(): Promise<void>;
}

/** Deep-merges plain objects (arrays replaced), for config overrides in tests. */
export function merge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (base && over && typeof base === 'object' && typeof over === 'object' && !Array.isArray(base) && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over as Record<string, unknown>)) out[k] = merge(out[k], v);
    return out as T;
  }
  return over as T;
}

type ConfigOverrides = Partial<ConfigInput> | Record<string, unknown>;

/** `config` may be a function of the running simulator (its key and issuer feed the mail peers, whose ports feed the config). */
export async function startSandboxEnv(opts: { sim?: IdentitySimulatorOptions; config?: ConfigOverrides | ((sim: IdentitySimulator) => Promise<ConfigOverrides>) } = {}): Promise<SandboxEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'xoauth2-relay-test-'));
  const sim = await startIdentitySimulator({ host: '127.0.0.1', port: 0, ...opts.sim });
  const caFile = join(dir, 'identity-ca.pem');
  await writeFile(caFile, sim.caCertPem);
  const overrides = typeof opts.config === 'function' ? await opts.config(sim) : opts.config;
  const input = merge(sandboxConfig({ stateDir: join(dir, 'state'), authorityHost: sim.url, extraCaFile: caFile }), overrides);
  const configFile = join(dir, 'config.yaml');
  const text = stringify(input);
  await writeFile(configFile, text);
  const checked = checkConfigText(text, configFile, process.env);
  if (!checked.ok) throw new Error(`test config invalid: ${JSON.stringify(checked.problems)}`);
  const memory = memoryLogger();
  const logger = memory.logger;
  return {
    sim,
    dir,
    configFile,
    config: checked.loaded.config,
    logger,
    logText: () => memory.text(),
    async close() {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` returns a truthy value (polling), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
