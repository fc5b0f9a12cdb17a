/** Small HTTP helpers for the simulator's routes: bodies in, JSON/HTML/redirects out. No framework on purpose. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OAuthError, oauthErrorBody } from './oauth-errors.js';

/** Bodies larger than this are refused (413): token requests are a few KB at most. */
const maxBodyBytes = 64 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One request as the routes see it. */
export interface RouteRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Decoded path segments, e.g. ['contoso.com', 'oauth2', 'v2.0', 'token']. */
  segments: string[];
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) throw new HttpError(413, 'request_too_large', `Request bodies are limited to ${maxBodyBytes} bytes.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An `application/x-www-form-urlencoded` body (RFC 6749 §3.2: token requests use it). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new OAuthError(400, 'invalid_request', 900144, "The request body must be 'application/x-www-form-urlencoded'.");
  }
  return new URLSearchParams(await readBody(req));
}

/** A JSON object body (the sandbox's own API). */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'The body is not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'invalid_json', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

// RFC 6749 §5.1: token responses must not be cached.
const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...noStore, ...headers });
  res.end(text);
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action *",
    ...noStore,
  });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'content-length': 0, ...noStore });
  res.end();
}

/** The client's correlation id (MSAL sends `client-request-id`), echoed in error bodies as Entra does. */
export function correlationIdOf(req: IncomingMessage): string | undefined {
  const value = req.headers['client-request-id'];
  return typeof value === 'string' ? value : undefined;
}

export function sendOAuthError(route: RouteRequest, err: OAuthError): void {
  const correlationId = correlationIdOf(route.req);
  sendJson(route.res, err.status, oauthErrorBody(err, correlationId), correlationId ? { 'client-request-id': correlationId } : {});
}

export function sendHttpError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: err.code, error_description: err.message });
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
