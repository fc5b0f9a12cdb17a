/**
 * One admin request on its way through a route: the parsed URL, the path parameters, the body fields, the
 * session it was admitted with, and how to answer an action (JSON for scripts and the page's fetch; a flash
 * message and a 303 back to the page for a plain form post).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Access } from './access.js';
import { redirect, sendJson } from './http-exchange.js';
import type { AdminSession } from './sessions.js';

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Decoded path parameters, in order. */
  params: string[];
  fields: Record<string, string>;
  session: AdminSession | null;
  /** A browser's own form post or page load (Accept: text/html), not the page's script or an API client. */
  wantsHtml: boolean;
}

export interface Route {
  method: 'GET' | 'POST';
  /** Anchored; capture groups become `params`. */
  path: RegExp;
  access: Access;
  handle(ex: Exchange): Promise<void> | void;
}

/** The JSON of a successful action: `message` is for a person, the rest for scripts. */
export interface ActionOutcome {
  status?: number;
  message: string;
  /** A sign-in link the page offers to open. */
  link?: string;
  [key: string]: unknown;
}

/** Answers an action: JSON, or (plain form post) a flash message for the next page view and a 303 to it. */
export function answerAction(ex: Exchange, outcome: ActionOutcome, ok = true): void {
  if (ex.wantsHtml && ex.session) {
    ex.session.flash = { ok, text: outcome.message };
    redirect(ex.res, '/');
    return;
  }
  const { status, ...body } = outcome;
  sendJson(ex.res, status ?? 200, { ok, ...body });
}

export function wantsHtml(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}
