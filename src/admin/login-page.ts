/** The login form shown when admin.passwordHash is set and the browser has no session. */
import { html, type SafeHtml } from './html.js';

/** `loginToken` goes into a hidden field; the same value must be in the login cookie (login-token.ts). */
export function loginPage(problem: string | null, loginToken: string): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xoauth2-relay: log in</title>
<link rel="stylesheet" href="/admin.css">
</head>
<body>
<header><h1>xoauth2-relay</h1></header>
<main class="login">
<form method="post" action="/login">
<h2>Log in</h2>
${problem ? html`<p class="notice failed" role="alert">${problem}</p>` : ''}
<input type="hidden" name="loginToken" value="${loginToken}">
<label for="password">Admin password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
`;
}
