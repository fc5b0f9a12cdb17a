/**
 * THE configuration schema: the single source of the TypeScript types, of validation (all errors at once),
 * of `config/example.yaml` and of `docs/configuration.md` (both generated from it by
 * `npm run gen:config-docs`; a test fails when they drift).
 *
 * Every field carries a description (docs), and where useful an `example` (example.yaml), a `hint`
 * (the fix `check-config` prints), and `secret: true` (masked in errors and logs).
 */
import { z } from 'zod';
import { isIP } from 'node:net';
import { byteSize } from './byte-size.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/** Addresses that are written `host:port`, e.g. `127.0.0.1:8025` or `[::1]:8025`. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

/** `a.b.c.d/len` or `ipv6/len`; a bare address means a single host. */
export function parseCidr(value: string): { address: string; prefix: number; family: 4 | 6 } | null {
  const [address, prefixText, extra] = value.split('/');
  if (!address || extra !== undefined) return null;
  const family = isIP(address);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) return null;
  return { address, prefix, family: family as 4 | 6 };
}

const filePath = (description: string) => z.string().min(1).meta({ description });
const optionalFile = (description: string, extra: Record<string, unknown> = {}) =>
  z.string().min(1).nullable().default(null).meta({ description, ...extra });

const port = z.number().int().min(0).max(65535).meta({ hint: 'use a TCP port number from 1 to 65535 (0 picks a free one: tests only)' });
const host = z.string().min(1);

const tlsMode = z.enum(['none', 'starttls', 'implicit']).meta({
  description: 'none: plain text; starttls: plain until the device asks for TLS (SMTP STARTTLS, IMAP STARTTLS, POP3 STLS); implicit: TLS from the first byte (SMTPS 465, IMAPS 993, POP3S 995)',
});

const listener = (defaultPort: number, defaultTls: 'none' | 'starttls') =>
  z.object({
    host: host.default('0.0.0.0').meta({ description: 'address to listen on (0.0.0.0 all IPv4, :: all, 127.0.0.1 this host only)' }),
    port: port.default(defaultPort).meta({ description: 'TCP port' }),
    tls: tlsMode.default(defaultTls),
  });

const upstream = (defaultHost: string, defaultPort: number, description: string) =>
  z
    .object({
      host: host.default(defaultHost).meta({ description: 'upstream host name (sovereign clouds use other hosts)' }),
      port: port.default(defaultPort).meta({ description: 'upstream port' }),
    })
    .prefault({})
    .meta({ description });

const accountName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const accountSchema = z
  .object({
    mailbox: z.email().meta({ description: 'mailbox the relay sends as and reads from (XOAUTH2 `user=`; for a shared mailbox, its address)', example: 'scanner@contoso.com', hint: 'write the full mailbox address, e.g. scanner@contoso.com' }),
    tenantId: z
      .string()
      .refine((v) => GUID.test(v) || DOMAIN.test(v) || v === 'organizations' || v === 'common', { message: 'not a tenant id' })
      .meta({ description: 'Entra tenant: its GUID (Directory (tenant) ID), a verified domain, `organizations` or `common`', example: '11111111-2222-3333-4444-555555555555', hint: 'copy "Directory (tenant) ID" from the app registration\'s Overview page in Entra' }),
    clientId: z
      .string()
      .regex(GUID, { message: 'not a GUID' })
      .meta({ description: 'Application (client) ID of the Entra app registration', example: '66666666-7777-8888-9999-000000000000', hint: 'copy "Application (client) ID" from the app registration\'s Overview page in Entra' }),
    flow: z.enum(['device-code', 'browser', 'client-credentials']).default('device-code').meta({
      description: 'how the token is obtained: device-code (sign in on any browser with a code), browser (sign-in with PKCE through a loopback redirect on this host), client-credentials (app-only, no user; needs clientSecretFile or certificateFile + privateKeyFile)',
    }),
    clientSecretFile: optionalFile('file holding the client secret (client-credentials); never write the secret itself here'),
    clientSecretEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).nullable().default(null).meta({ description: 'name of an environment variable holding the client secret (client-credentials), instead of clientSecretFile' }),
    certificateFile: optionalFile('PEM certificate uploaded to the app registration (client-credentials with a certificate)'),
    privateKeyFile: optionalFile('PEM private key of certificateFile'),
    senderPolicy: z.enum(['keep', 'rewrite-envelope', 'rewrite-from']).default('rewrite-envelope').meta({
      description: 'what happens to a device\'s sender address: keep (as sent; the mailbox needs Send As rights for it in Exchange), rewrite-envelope (MAIL FROM becomes the mailbox), rewrite-from (also the From header; the original goes to Reply-To and an X-Original-From trace header)',
    }),
    redirectPort: port.default(0).meta({ description: 'browser flow: loopback port for the redirect (0: any free port; register http://localhost as a redirect URI of a "Mobile and desktop" platform)' }),
  })
  .strict();

const device = z
  .object({
    name: z.string().regex(accountName).meta({ description: 'a name for logs and the admin page', example: 'floor2-mfp' }),
    username: z.string().min(1).nullable().default(null).meta({ description: 'user name the device logs in with (null: admitted by source address only, SMTP only)', example: 'mfp2' }),
    passwordHash: z.string().nullable().default(null).meta({ description: 'scrypt hash of the device password, made with `xoauth2-relay hash-password`', secret: true, example: 'scrypt$32768$8$1$…' }),
    account: z.string().meta({ description: 'account (key under `accounts`) whose mailbox this device uses', example: 'scanner' }),
    allowedSenders: z.array(z.string().min(1)).default([]).meta({ description: 'SMTP: envelope senders this device may use (addresses, or @domain for a whole domain; empty: any)' }),
    allowedRecipientDomains: z.array(z.string().min(1)).default([]).meta({ description: 'SMTP: domains this device may send to (empty: any)' }),
    allowFrom: z
      .array(z.string().refine((v) => parseCidr(v) !== null, { message: 'not an address or CIDR range' }).meta({ hint: 'write an address (192.168.10.50) or a range (192.168.10.0/24, fd00::/64)' }))
      .default([])
      .meta({ description: 'source addresses or CIDR ranges the device may connect from (empty: any address, only with a password)', example: ['192.168.10.0/24'] }),
  })
  .strict();

const tokenSettings = z
  .object({
    refreshBeforeExpirySeconds: z.number().int().min(600).max(3000).default(600).meta({ description: 'refresh an access token this long before it expires (at least 10 minutes: Exchange may reject tokens that expire soon)' }),
    keepAliveDays: z.number().min(0.001).max(60).default(7).meta({ description: 'refresh an idle account this often, so its refresh token (90 days, sliding) never ages out' }),
    retryInitialSeconds: z.number().min(0.05).default(5).meta({ description: 'first back-off after the identity platform failed (network or 5xx); doubles up to retryMaxSeconds' }),
    retryMaxSeconds: z.number().min(0.1).default(300).meta({ description: 'longest back-off between retries after identity platform failures' }),
    maxWaitSeconds: z.number().min(0.1).max(60).default(3).meta({ description: 'longest a device login or a delivery waits for a token when none is usable (a valid token is served at once while it refreshes behind; during a back-off nobody waits): past it the device is told to try again later' }),
    requestTimeoutSeconds: z.number().min(1).max(120).default(30).meta({ description: 'time limit of one request to the identity platform' }),
  })
  .strict();

export const configSchema = z
  .object({
    stateDir: z.string().min(1).default('/var/lib/xoauth2-relay').meta({ description: 'directory for the token store, its key file and the spool (systemd: StateDirectory)' }),
    identity: z
      .object({
        authorityHost: z.url({ protocol: /^https$/ }).default('https://login.microsoftonline.com').meta({ description: 'identity platform (https only); other clouds: https://login.chinacloudapi.cn, https://login.microsoftonline.us', hint: 'use an https:// URL such as https://login.microsoftonline.com' }),
        extraCaFile: optionalFile('extra CA (PEM) trusted for the identity host only: for the sandbox or a private test platform, never needed for Microsoft'),
        tokens: tokenSettings.prefault({}).meta({ description: 'when tokens are refreshed, and how failures are retried' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'the Microsoft identity platform the relay gets tokens from' }),
    accounts: z
      .record(z.string().regex(accountName, { message: 'account names use letters, digits, . _ -' }), accountSchema)
      .refine((a) => Object.keys(a).length > 0, { message: 'no accounts' })
      .meta({ description: 'mailboxes the relay holds tokens for, by a short name', hint: 'define at least one account under `accounts:`' }),
    devices: z.array(device).default([]).meta({ description: 'devices allowed to use the relay, each tied to one account' }),
    smtp: z
      .object({
        listen: z.array(listener(2525, 'none')).default([{ host: '0.0.0.0', port: 2525, tls: 'none' }]).meta({ description: 'device-facing SMTP listeners (use port 25 or 587 for devices that cannot change it)' }),
        upstream: upstream('smtp.office365.com', 587, 'Exchange Online SMTP submission (STARTTLS required)'),
        maxMessageBytes: byteSize({ min: 1024, default: 35 * 1024 * 1024, description: 'largest message accepted from a device (Exchange Online default limit: 35 MiB, which Microsoft writes 35 MB)' }),
        maxConnectionsPerAddress: z.number().int().min(1).default(20).meta({ description: 'simultaneous device connections allowed from one source address' }),
        delivery: z
          .object({
            maxConnectionsPerMailbox: z.number().int().min(1).max(20).default(3).meta({ description: 'upstream connections per mailbox at once (Exchange Online allows 3)' }),
            maxMessagesPerMinute: z.number().int().min(1).default(30).meta({ description: 'messages per minute per mailbox (Exchange Online allows 30)' }),
            retryInitialSeconds: z.number().min(0.05).default(60).meta({ description: 'first delay after a temporary failure (4xx, network); doubles with jitter up to retryMaxSeconds' }),
            retryMaxSeconds: z.number().min(0.1).default(3600).meta({ description: 'longest delay between delivery attempts' }),
            maxAgeHours: z.number().min(0.001).default(72).meta({ description: 'a message still undelivered (deferred, or held for a missing token) after this long is dead-lettered' }),
          })
          .strict()
          .prefault({})
          .meta({ description: 'delivery to Exchange Online: pacing and retries' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'devices submit mail here; the relay spools it and delivers it to Exchange Online' }),
    imap: z
      .object({
        listen: z.array(listener(1143, 'starttls')).default([]).meta({ description: 'device-facing IMAP listeners (none by default)' }),
        upstream: upstream('outlook.office365.com', 993, 'Exchange Online IMAP (implicit TLS)'),
      })
      .strict()
      .prefault({})
      .meta({ description: 'devices read mail here; the relay logs in upstream with XOAUTH2 and splices the session' }),
    pop3: z
      .object({
        listen: z.array(listener(1110, 'none')).default([]).meta({ description: 'device-facing POP3 listeners (none by default)' }),
        upstream: upstream('outlook.office365.com', 995, 'Exchange Online POP3 (implicit TLS)'),
      })
      .strict()
      .prefault({})
      .meta({ description: 'devices fetch mail here; the relay logs in upstream with XOAUTH2 and splices the session' }),
    upstreamTls: z
      .object({
        extraCaFile: optionalFile('extra CA (PEM) trusted for upstream mail servers, for tests or private peers; upstream certificates are always verified'),
      })
      .strict()
      .prefault({})
      .meta({ description: 'TLS towards the mail servers' }),
    tls: z
      .object({
        certFile: optionalFile('certificate (PEM) the device-facing listeners present for STARTTLS and implicit TLS'),
        keyFile: optionalFile('private key (PEM) of certFile'),
        legacyDevices: z.boolean().default(false).meta({ description: 'accept TLS 1.0/1.1 and old ciphers from devices (device-facing listeners only, never upstream)' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'TLS towards the devices' }),
    admin: z
      .object({
        listen: z.string().refine((v) => parseHostPort(v) !== null, { message: 'not host:port' }).default('127.0.0.1:8025').meta({ description: 'admin web page, JSON API and /metrics (host:port)', hint: 'write host:port, e.g. 127.0.0.1:8025' }),
        passwordHash: z.string().nullable().default(null).meta({ description: 'scrypt hash of the admin password (required to listen on a non-loopback address)', secret: true }),
        sessionMinutes: z.number().int().min(5).max(10_080).default(480).meta({ description: 'admin page sessions end after this many idle minutes (and always when the relay restarts)' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'the admin web page' }),
    notify: z
      .object({
        webhookUrl: z.url({ protocol: /^https?$/ }).nullable().default(null).meta({ description: 'URL that receives a JSON notice (POST) when an account turns invalid or a device code waits to be entered; null: log only. Chat webhook URLs hold a secret: masked in errors, never logged', secret: true, hint: 'write an http:// or https:// URL' }),
        webhookTimeoutSeconds: z.number().min(1).max(60).default(5).meta({ description: 'give up on one webhook POST after this long; notices are never retried' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'telling the operator when an account needs a person (besides the log)' }),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').meta({ description: 'log level (debug and trace show protocol transcripts, with secrets masked)' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'logging (JSON lines on standard output)' }),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type AccountConfig = z.output<typeof accountSchema>;
export type DeviceConfig = Config['devices'][number];
export type TlsMode = z.output<typeof tlsMode>;
export const flows = accountSchema.shape.flow.unwrap().options;
export type Flow = (typeof flows)[number];
