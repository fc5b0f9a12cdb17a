/**
 * The sandbox mailbox's control API (plain HTTP on loopback; it is a test and demo tool, like the identity
 * simulator's /sandbox/api/): switches the emulated Exchange settings of mailbox-rules.ts.
 *
 *   GET    /sandbox/api/mailbox-rules                       {tenant, mailboxes}
 *   PUT    /sandbox/api/mailbox-rules/tenant                {"smtpAuthDisabled": true}            → the tenant's settings
 *   PUT    /sandbox/api/mailbox-rules/mailboxes/<address>   {"sendAs": ["desk@…"], "appRoles": []} → that mailbox's settings
 *   DELETE /sandbox/api/mailbox-rules/mailboxes/<address>   that mailbox back to the defaults
 *   DELETE /sandbox/api/mailbox-rules                       everything back to the defaults
 * A PUT merges the given fields; an unknown field or a bad value answers 400 {error, error_description}.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../log.js';
import { errorFields } from '../../log.js';
import { RulesError, type MailboxRulebook } from './mailbox-rules.js';

const PREFIX = '/sandbox/api/mailbox-rules';
const MAX_BODY_BYTES = 64 * 1024;

export interface ControlApi {
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RulesError('the body is too large');
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new RulesError('the body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RulesError('the body must be a JSON object');
  return body as Record<string, unknown>;
}

async function route(rules: MailboxRulebook, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
  const method = req.method ?? 'GET';
  if (path === PREFIX && method === 'GET') return send(res, 200, rules.describe());
  if (path === PREFIX && method === 'DELETE') {
    rules.reset();
    return send(res, 200, rules.describe());
  }
  if (path === `${PREFIX}/tenant` && method === 'PUT') return send(res, 200, rules.updateTenant(await readObject(req)));
  const mailbox = path.startsWith(`${PREFIX}/mailboxes/`) ? decodeURIComponent(path.slice(PREFIX.length + '/mailboxes/'.length)) : '';
  if (mailbox.includes('@') && method === 'PUT') return send(res, 200, rules.update(mailbox, await readObject(req)));
  if (mailbox.includes('@') && method === 'DELETE') {
    rules.reset(mailbox);
    return send(res, 200, rules.for(mailbox));
  }
  send(res, 404, { error: 'not_found', error_description: `No such endpoint: ${method} ${path}` });
}

/** Starts the control API on `host` (loopback by default). */
export async function startControlApi(rules: MailboxRulebook, opts: { host: string; port: number; logger: Logger }): Promise<ControlApi> {
  const server: Server = createServer((req, res) => {
    route(rules, req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof RulesError) return send(res, 400, { error: 'invalid_request', error_description: err.message });
      opts.logger.error(errorFields(err), 'control API request failed');
      send(res, 500, { error: 'server_error', error_description: 'the sandbox mailbox failed; see its log' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}${PREFIX}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
