/**
 * The small HTTP vocabulary of the admin server: read a bounded form or JSON body, and answer with the
 * headers every answer carries (no caching, no sniffing, no framing, a strict content security policy that
 * allows only our own script and stylesheet).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RelayError, catalogue, type ErrorCode } from '../errors.js';
import type { SafeHtml } from './html.js';

/** Forms and JSON actions are tiny; anything bigger is not ours. */
const MAX_BODY_BYTES = 16 * 1024;

const securityHeaders: Record<string, string> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // Not `no-referrer`: under it browsers send `Origin: null` on the page's own form posts (log in, log out),
  // which the same-site check cannot place. Other sites still get no referrer (links carry rel=noreferrer too).
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

/** Fields of a urlencoded form or a flat JSON object; other content types give no fields. */
export async function readFields(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, 'request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (text === '') return {};
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpProblem(400, 'the body is not valid JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpProblem(400, 'the body must be a JSON object');
    return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  }
  throw new HttpProblem(415, 'send application/x-www-form-urlencoded or application/json');
}

/** A failure that is about HTTP itself (size, method, path), not the relay. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...securityHeaders, 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string | string[]> = {}): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value, null, 1)}\n`, headers);
}

export function sendHtml(res: ServerResponse, status: number, page: SafeHtml, headers: Record<string, string | string[]> = {}): void {
  send(res, status, 'text/html; charset=utf-8', page.text, headers);
}

/** 303: after a form post the browser loads `location` with GET (no "resubmit the form?" on reload). */
export function redirect(res: ServerResponse, location: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { ...securityHeaders, location, 'content-length': 0, ...headers });
  res.end();
}

/** HTTP status for a catalogue error an admin request ran into. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'ADMIN_SESSION_REQUIRED':
    case 'ADMIN_CSRF_REJECTED':
    case 'ADMIN_HOST_REFUSED':
      return 403;
    case 'ADMIN_LOGIN_FAILED':
      return 401;
    case 'ADMIN_LOGIN_THROTTLED':
      return 429;
    case 'UNKNOWN_ACCOUNT':
    case 'NO_SUCH_MESSAGE':
      return 404;
    case 'FLOW_NOT_SUPPORTED':
    case 'TOKEN_INVALID':
    case 'ACCOUNT_TEST_UNAVAILABLE':
      return 409;
    case 'SIGN_IN_FAILED':
    case 'TOKEN_REFRESH_FAILED':
      return 502;
    default:
      return catalogue[code].kind === 'device' ? 400 : 500;
  }
}

/** The JSON body of a failed API request: the catalogue code and the operator's sentence. */
export function errorBody(err: RelayError): { error: { code: ErrorCode; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
