/**
 * Checks that span several keys (a device's account exists, a flow has its credentials, ports do not clash …).
 * They run on the raw input, beside the schema, so that one `check-config` run reports every problem at once
 * even when the schema itself also failed.
 */
import { isLoopbackHost } from '../transport/addresses.js';
import { passwordHashProblem } from '../auth/password-hash.js';
import { parseHostPort } from './schema.js';
import { formatPath, showValue, type ConfigProblem } from './problems.js';

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function relationProblems(input: unknown): ConfigProblem[] {
  if (!isObject(input)) return [];
  const problems: ConfigProblem[] = [];
  const add = (path: PropertyKey[], message: string, hint?: string) =>
    problems.push({ path: formatPath(path), shown: showValue(input, path), message, hint });

  const accounts = isObject(input.accounts) ? input.accounts : {};
  for (const [name, account] of Object.entries(accounts)) {
    if (!isObject(account)) continue;
    checkAccountCredentials(name, account, add);
  }

  const devices = Array.isArray(input.devices) ? input.devices : [];
  const usernames = new Map<string, number>();
  const names = new Map<string, number>();
  devices.forEach((device, i) => {
    if (!isObject(device)) return;
    const account = str(device.account);
    if (account !== undefined && !(account in accounts)) {
      add(['devices', i, 'account'], 'names no configured account', `use one of: ${Object.keys(accounts).join(', ') || '(none defined)'}`);
    }
    const username = str(device.username);
    const hash = str(device.passwordHash);
    const allowFrom = Array.isArray(device.allowFrom) ? device.allowFrom : [];
    if (username !== undefined && hash === undefined) {
      add(['devices', i, 'passwordHash'], 'is required when the device has a username', 'run `xoauth2-relay hash-password` and paste its output here');
    }
    if (hash !== undefined) {
      const reason = passwordHashProblem(hash);
      if (reason) add(['devices', i, 'passwordHash'], reason, 'run `xoauth2-relay hash-password` and paste its output here');
    }
    if (username === undefined && allowFrom.length === 0) {
      add(['devices', i, 'allowFrom'], 'is empty on a device without username: anyone could send through the relay', 'list the device\'s address (e.g. [192.168.10.50/32]) or give it a username and passwordHash');
    }
    for (const [key, seen] of [[username, usernames], [str(device.name), names]] as const) {
      if (key === undefined) continue;
      const first = seen.get(key);
      if (first !== undefined) add(['devices', i, seen === usernames ? 'username' : 'name'], `is already used by devices[${first}]`, 'give every device its own name and username');
      else seen.set(key, i);
    }
  });

  checkListeners(input, add);
  checkAdmin(input, add);
  const store = isObject(input.tokenStore) ? input.tokenStore : {};
  if (store.kind === 'redis' && str(store.url) === undefined) {
    add(['tokenStore', 'url'], 'is required with kind: redis', 'write the Redis server as redis://host:6379/0 (rediss:// for TLS)');
  }
  return problems;
}

type Add = (path: PropertyKey[], message: string, hint?: string) => void;

function checkAccountCredentials(name: string, account: Raw, add: Add): void {
  const flow = str(account.flow) ?? 'device-code';
  const secretFile = str(account.clientSecretFile);
  const secretEnv = str(account.clientSecretEnv);
  const cert = str(account.certificateFile);
  const key = str(account.privateKeyFile);
  const at = (k: string) => ['accounts', name, k];
  if (flow === 'client-credentials') {
    const hasSecret = secretFile !== undefined || secretEnv !== undefined;
    const hasCert = cert !== undefined || key !== undefined;
    if (!hasSecret && !hasCert) {
      add(at('flow'), 'client-credentials needs a client secret or a certificate', 'set clientSecretFile (or clientSecretEnv), or certificateFile and privateKeyFile');
    }
    if (hasSecret && hasCert) add(at('certificateFile'), 'is set together with a client secret', 'use either the secret or the certificate, not both');
    if (secretFile !== undefined && secretEnv !== undefined) add(at('clientSecretEnv'), 'is set together with clientSecretFile', 'keep one of the two');
    if ((cert === undefined) !== (key === undefined)) {
      add(at(cert === undefined ? 'certificateFile' : 'privateKeyFile'), 'is missing: a certificate needs both files', 'set certificateFile and privateKeyFile');
    }
  } else {
    for (const k of ['clientSecretFile', 'clientSecretEnv', 'certificateFile', 'privateKeyFile']) {
      if (str(account[k]) !== undefined) add(at(k), `only applies to flow: client-credentials (this account uses ${flow})`, 'remove it, or set flow: client-credentials');
    }
  }
}

function checkListeners(input: Raw, add: Add): void {
  const tls = isObject(input.tls) ? input.tls : {};
  const hasCert = str(tls.certFile) !== undefined && str(tls.keyFile) !== undefined;
  const taken = new Map<string, string>();
  for (const protocol of ['smtp', 'imap', 'pop3'] as const) {
    const section = input[protocol];
    const listen = isObject(section) && Array.isArray(section.listen) ? section.listen : [];
    listen.forEach((l, i) => {
      if (!isObject(l)) return;
      const path = [protocol, 'listen', i];
      if ((l.tls === 'starttls' || l.tls === 'implicit' || l.tls === 'auto') && !hasCert) {
        add([...path, 'tls'], `needs a certificate: tls.certFile and tls.keyFile are not set`, 'set tls.certFile and tls.keyFile, or use tls: none');
      }
      const port = l.port;
      if (typeof port === 'number' && port !== 0) {
        const where = `${str(l.host) ?? '0.0.0.0'}:${port}`;
        const other = taken.get(String(port));
        if (other) add([...path, 'port'], `is already used by ${other}`, 'give every listener its own port');
        else taken.set(String(port), `${formatPath(path)} (${where})`);
      }
    });
  }
}

function checkAdmin(input: Raw, add: Add): void {
  const admin = isObject(input.admin) ? input.admin : {};
  const listen = str(admin.listen);
  const parsed = listen ? parseHostPort(listen) : null;
  if (parsed && !isLoopbackHost(parsed.host) && str(admin.passwordHash) === undefined) {
    add(['admin', 'listen'], 'is reachable from the network but no admin password is set', 'set admin.passwordHash (from `xoauth2-relay hash-password`), or listen on 127.0.0.1');
  }
  const adminTls = isObject(admin.tls) ? admin.tls : {};
  const https = adminTls.enabled === true;
  if (parsed && !isLoopbackHost(parsed.host) && !https && admin.allowPlainHttp !== true) {
    add(['admin', 'listen'], 'is reachable from the network over plain HTTP: the admin password and session cookie would cross it in clear text', 'set admin.tls.enabled: true (it uses tls.certFile/keyFile unless admin.tls names its own), or listen on 127.0.0.1, or set admin.allowPlainHttp: true behind a TLS reverse proxy on this host');
  }
  const tls = isObject(input.tls) ? input.tls : {};
  const certFile = str(adminTls.certFile) ?? str(tls.certFile);
  const keyFile = str(adminTls.keyFile) ?? str(tls.keyFile);
  if (https && (certFile === undefined || keyFile === undefined)) {
    add(['admin', 'tls', 'enabled'], 'is true but no certificate and key are set for the admin page', 'set admin.tls.certFile and admin.tls.keyFile, or tls.certFile and tls.keyFile (the device-facing ones are used by default)');
  }
}
