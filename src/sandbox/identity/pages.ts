/**
 * The simulator's HTML: the device-login page (where Microsoft's is https://microsoft.com/devicelogin) and the
 * sign-in page of the authorization endpoint. Plain forms, so a person in a demo and a test with fetch use the
 * same path. Every interpolated value goes through escapeHtml.
 */
import { escapeHtml as h } from './http.js';

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h(title)} - xoauth2-relay sandbox</title>
<style>
body{font-family:system-ui,sans-serif;background:#f3f3f3;margin:0;display:flex;justify-content:center}
main{background:#fff;margin:3rem 1rem;padding:2rem 2.5rem;max-width:30rem;width:100%;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:1.4rem;font-weight:600}label{display:block;margin:1rem 0 .3rem}
input[type=text],input[type=email]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #888}
button{margin:1.2rem .5rem 0 0;padding:.5rem 1.4rem;font-size:1rem;border:1px solid #0067b8;background:#0067b8;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#000;border-color:#888}.error{color:#a80000}.note{color:#555;font-size:.85rem}
code{font-size:1.05rem}
</style></head>
<body><main>
<p class="note">xoauth2-relay sandbox identity platform: not Microsoft. Any mailbox signs in without a password.</p>
${body}
</main></body></html>
`;
}

export interface DeviceLoginForm {
  userCode?: string;
  upn?: string;
  error?: string;
}

/** GET /sandbox/devicelogin: enter the code shown on the device and the mailbox to sign in as. */
export function deviceLoginPage(form: DeviceLoginForm = {}): string {
  return layout(
    'Enter code',
    `<h1>Enter code</h1>
<p>Enter the code displayed on your app or device, and the mailbox to sign in as.</p>
${form.error ? `<p class="error" role="alert">${h(form.error)}</p>` : ''}
<form method="post" action="/sandbox/devicelogin">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" required value="${h(form.userCode ?? '')}">
<label for="upn">Mailbox</label>
<input type="email" id="upn" name="upn" placeholder="someone@example.com" value="${h(form.upn ?? '')}">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="decline" class="secondary" formnovalidate>Decline</button>
</form>`,
  );
}

/** The answer after the device-login form: what the person did, and that they can close the window. */
export function deviceLoginDonePage(outcome: { approved: boolean; clientId: string; upn?: string }): string {
  return outcome.approved
    ? layout(
        'Signed in',
        `<h1>You are signed in</h1><p>You have signed in as <b>${h(outcome.upn ?? '')}</b> to the application <code>${h(outcome.clientId)}</code> on your device. You may now close this window.</p>`,
      )
    : layout('Declined', `<h1>Sign-in declined</h1><p>The application <code>${h(outcome.clientId)}</code> was not given access. You may now close this window.</p>`);
}

export interface SignInForm {
  /** Server-side id of the pending authorization request. */
  requestId: string;
  clientId: string;
  scopeParam: string;
  loginHint?: string;
  error?: string;
}

/** GET /{tenant}/oauth2/v2.0/authorize: sign in as a mailbox and consent to the requested scopes. */
export function signInPage(form: SignInForm): string {
  return layout(
    'Sign in',
    `<h1>Sign in</h1>
<p>The application <code>${h(form.clientId)}</code> asks for: <code>${h(form.scopeParam)}</code></p>
${form.error ? `<p class="error" role="alert">${h(form.error)}</p>` : ''}
<form method="post">
<input type="hidden" name="request" value="${h(form.requestId)}">
<label for="upn">Mailbox</label>
<input type="email" id="upn" name="upn" required placeholder="someone@example.com" value="${h(form.loginHint ?? '')}">
<button type="submit" name="action" value="approve">Sign in</button>
<button type="submit" name="action" value="decline" class="secondary" formnovalidate>Cancel</button>
</form>`,
  );
}

/** OAuth 2.0 Form Post Response Mode: the browser posts the response to the redirect URI. */
export function formPostPage(redirectUri: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${h(name)}" value="${h(value)}">`)
    .join('\n');
  return layout('Continue', `<form method="post" action="${h(redirectUri)}">${inputs}\n<button type="submit">Continue</button></form>`);
}

/** An error a person sees when the request cannot be sent back to the application (RFC 6749 §4.1.2.1). */
export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${h(title)}</h1><p class="error">${h(message)}</p>`);
}
