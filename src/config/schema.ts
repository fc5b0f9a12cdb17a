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

const tlsMode = z.enum(['none', 'starttls', 'implicit', 'auto']).meta({
  description: 'none: plain text; starttls: plain until the device asks for TLS (SMTP STARTTLS, IMAP STARTTLS, POP3 STLS); implicit: TLS from the first byte (SMTPS 465, IMAPS 993, POP3S 995); auto: both on one port, for devices that start TLS at once on a STARTTLS port (some MFPs on 587 or 25) or whose mode is unknown: a TLS handshake as the first bytes means implicit TLS, anything else (or half a second of silence, since plain clients wait for the greeting) means starttls',
});

const loginBeforeTls = z.enum(['refuse', 'allow']).meta({
  description: 'starttls and auto listeners: may a device log in (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH) before it has started TLS? refuse (default): it is told to start TLS first (SMTP `530 5.7.0 Must issue a STARTTLS command first`, IMAP `NO [PRIVACYREQUIRED]` with LOGINDISABLED advertised, POP3 `-ERR [AUTH]`), so no login succeeds over clear text; allow: a plain login is accepted, TLS stays offered. Not used on none listeners (plain login is their purpose: legacy devices on a trusted network) nor on implicit ones (always TLS). An SMTP device admitted by address (no AUTH) is not affected',
});

const listener = (defaultPort: number, defaultTls: 'none' | 'starttls') =>
  z.object({
    host: host.default('0.0.0.0').meta({ description: 'address to listen on (0.0.0.0 all IPv4, :: all, 127.0.0.1 this host only)' }),
    port: port.default(defaultPort).meta({ description: 'TCP port' }),
    tls: tlsMode.default(defaultTls),
    loginBeforeTls: loginBeforeTls.default('refuse'),
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
    senderPolicy: z.enum(['auto', 'keep', 'rewrite-envelope', 'rewrite-from']).default('auto').meta({
      description: 'whose address a device\'s message goes out as (Exchange checks the envelope sender and the From header against the mailbox\'s Send As rights): auto (a sender the mailbox may send as, itself or one listed in sendAsGranted, is kept; any other is replaced by the mailbox in MAIL FROM and From, display name kept, the original in Reply-To and X-Original-From), keep (as the device says; every sender needs Send As in Exchange). rewrite-envelope and rewrite-from are deprecated and act as auto',
      hint: 'use auto (the default), or keep when the mailbox has Send As rights for every sender',
    }),
    sendAsGranted: z.array(z.string().min(1)).default([]).meta({
      description: 'senders the mailbox has Send As rights for in Exchange (`Add-RecipientPermission -Identity <sender> -Trustee <mailbox> -AccessRights SendAs`): addresses, or @domain for a whole domain; under senderPolicy auto they are kept as sent',
      example: ['reception@contoso.com'],
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
    senderPolicy: z.enum(['auto', 'keep']).nullish().meta({ description: 'SMTP: this device\'s sender policy, overriding its account\'s senderPolicy (null or absent: the account\'s)' }),
    allowedRecipientDomains: z.array(z.string().min(1)).default([]).meta({ description: 'SMTP: domains this device may send to (empty: any)' }),
    allowFrom: z
      .array(z.string().refine((v) => parseCidr(v) !== null, { message: 'not an address or CIDR range' }).meta({ hint: 'write an address (192.168.10.50) or a range (192.168.10.0/24, fd00::/64)' }))
      .default([])
      .meta({ description: 'source addresses or CIDR ranges the device may connect from (empty: any address, only with a password)', example: ['192.168.10.0/24'] }),
    popBeforeSmtpMinutes: z.number().min(0).max(1440).default(0).meta({
      description: 'POP-before-SMTP (Fuji Xerox, Brother): after this device logs in over POP3 or IMAP through the relay, SMTP without AUTH from the same source address is admitted as this device for this many minutes (0: off). Only the address the login came from, only while no other device\'s window covers that address too',
    }),
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
    tokenStore: z
      .object({
        kind: z.enum(['file', 'redis']).default('file').meta({ description: 'where tokens and account states live: `file` (encrypted files in stateDir, one relay) or `redis` (shared by several relay instances; see docs/high-availability.md)' }),
        url: z
          .string()
          .regex(/^rediss?:\/\/[^:@/\s]+(:\d{1,5})?(\/\d{1,2})?$/, { message: 'use redis://host:port/db or rediss://host:port/db (TLS), without a password' })
          .nullable()
          .default(null)
          .meta({ description: 'the Redis server for kind: redis (`rediss://` for TLS); the password goes in passwordFile, never in the URL', example: 'redis://127.0.0.1:6379/0', hint: 'write redis://host:6379/0 (or rediss:// for TLS) and put the password into tokenStore.passwordFile' }),
        passwordFile: optionalFile('file with the Redis password (AUTH), for kind: redis'),
        keyPrefix: z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/).default('xoauth2-relay:').meta({ description: 'prefix of every Redis key of this relay cluster (several clusters can share one Redis)' }),
        caFile: optionalFile('extra CA (PEM) trusted for a rediss:// server'),
      })
      .strict()
      .prefault({})
      .meta({ description: 'the token store shared by the processes (and, with redis, the relay instances) that serve these accounts; tokens are sealed with the token-store key (AES-256-GCM) before they are stored either way' }),
    accounts: z
      .record(z.string().regex(accountName, { message: 'account names use letters, digits, . _ -' }), accountSchema)
      .refine((a) => Object.keys(a).length > 0, { message: 'no accounts' })
      .meta({ description: 'mailboxes the relay holds tokens for, by a short name', hint: 'define at least one account under `accounts:`' }),
    devices: z.array(device).default([]).meta({ description: 'devices allowed to use the relay, each tied to one account' }),
    smtp: z
      .object({
        listen: z.array(listener(2525, 'none')).default([{ host: '0.0.0.0', port: 2525, tls: 'none', loginBeforeTls: 'refuse' }]).meta({ description: 'device-facing SMTP listeners (use port 25 or 587 for devices that cannot change it)' }),
        upstream: z
          .object({
            host: host.default('smtp.office365.com').meta({ description: 'upstream host name (sovereign clouds use other hosts; High Volume Email: smtp.hve.mx.microsoft)' }),
            port: port.default(587).meta({ description: 'upstream port' }),
            connectTimeoutSeconds: z.number().min(0.1).max(300).default(30).meta({ description: 'time limit of the TCP connection to the upstream; past it the attempt fails and the message is retried' }),
            stallTimeoutSeconds: z.number().min(0.1).max(600).default(60).meta({ description: 'longest silence allowed from the upstream during a delivery: its greeting, each reply, and progress while the message is sent (a stalled server frees its mailbox slot after this and the message is retried)' }),
            hve: z.boolean().default(false).meta({ description: 'the upstream is High Volume Email: internal recipients only, no token close to expiry presented, the account\'s mailbox is the HVE account (docs/high-volume-email.md); smtp.hve.mx.microsoft and smtp-hve.office365.com count as HVE whatever this says' }),
          })
          .strict()
          .prefault({})
          .meta({ description: 'Exchange Online SMTP submission (STARTTLS required)' }),
        maxMessageBytes: byteSize({ min: 1024, default: 35 * 1024 * 1024, description: 'largest message accepted from a device (Exchange Online default limit: 35 MiB, which Microsoft writes 35 MB)' }),
        maxConnectionsPerAddress: z.number().int().min(1).default(20).meta({ description: 'simultaneous device connections allowed from one source address' }),
        maxConnectionsPerListener: z.number().int().min(1).max(100_000).default(1000).meta({ description: 'simultaneous connections one SMTP, IMAP or POP3 listener holds, whatever their addresses; over it a new connection gets the protocol\'s "too busy" reply (SMTP 421) and is closed' }),
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
    mailboxSessions: z
      .object({
        maxPerMailbox: z.number().int().min(1).max(100_000).default(10).meta({ description: 'upstream IMAP and POP3 sessions one mailbox may hold at once through this relay (Exchange Online refuses more than about 16 to 20 per mailbox, counted over every client; keep room for Outlook and others; only an upstream other than Exchange may want more)' }),
        waitSeconds: z.number().min(0).max(120).default(10).meta({ description: 'how long a device login waits for a free session slot of its mailbox before it is told to try again later (IMAP NO [UNAVAILABLE], POP3 -ERR [IN-USE])' }),
        maxWaitingPerMailbox: z.number().int().min(0).max(100_000).default(20).meta({ description: 'device logins that may wait for a slot of one mailbox at once; past it a login is told to try again later at once' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'a cap on concurrent upstream IMAP/POP3 sessions per mailbox, so a fleet of devices polling one mailbox cannot exhaust Exchange\'s per-mailbox limit (sessions of the IMAP and POP3 listeners count together)' }),
    logins: z
      .object({
        maxCommandsBeforeLogin: z.number().int().min(5).max(10_000).default(50).meta({ description: 'IMAP and POP3: commands a connection may send before it logs in; past it the connection is closed' }),
        maxConcurrentChecks: z.number().int().min(1).max(16).nullable().default(null).meta({ description: 'password checks (scrypt, 32 MiB each, on the thread pool the spool\'s fsyncs also use) running at once; null: one less than the CPU cores, at most 2' }),
        maxQueuedChecks: z.number().int().min(0).max(10_000).default(20).meta({ description: 'password checks waiting for a slot; past it a login gets a temporary failure (SMTP 454) at once instead of a growing backlog' }),
        preLoginTimeoutSeconds: z.number().min(5).max(3600).default(60).meta({ description: 'IMAP and POP3: silence allowed from a device before it has logged in (after the greeting, between commands, and for an implicit-TLS handshake); past it the relay answers BYE / -ERR and closes. The time a device waits for its own login reply (password check, upstream login) does not count. After login the session\'s idle limit applies instead (IMAP 31 minutes, POP3 10 minutes)' }),
        maxConcurrentUpstreamLogins: z.number().int().min(1).max(10_000).default(64).meta({ description: 'IMAP and POP3: upstream logins (TLS connection and XOAUTH2 at the mail server) under way at once; more wait in a queue, so a burst of devices logging in together is served in turn' }),
        maxQueuedUpstreamLogins: z.number().int().min(0).max(100_000).default(2000).meta({ description: 'IMAP and POP3: logins waiting for an upstream login slot; past it a login gets a temporary failure at once (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]: "try again later") instead of a closed connection' }),
      })
      .strict()
      .prefault({})
      .meta({ description: 'bounded work for device logins (the back-off after failed logins is described in docs/security.md)' }),
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
        tls: z
          .object({
            enabled: z.boolean().default(false).meta({ description: 'serve the admin page over HTTPS (session cookies are then marked Secure); required for a non-loopback admin.listen unless allowPlainHttp is true' }),
            certFile: optionalFile('certificate (PEM) of the admin page; null: tls.certFile, the device-facing one'),
            keyFile: optionalFile('private key (PEM) of admin.tls.certFile; null: tls.keyFile'),
          })
          .strict()
          .prefault({})
          .meta({ description: 'HTTPS for the admin page' }),
        allowPlainHttp: z.boolean().default(false).meta({ description: 'let a non-loopback admin.listen speak plain HTTP (the admin password and session cookie then cross the network in clear text; logged as a warning at start). Use only behind a TLS reverse proxy on the same host' }),
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
export type LoginBeforeTls = z.output<typeof loginBeforeTls>;
export const flows = accountSchema.shape.flow.unwrap().options;
export type Flow = (typeof flows)[number];
