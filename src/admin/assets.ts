/**
 * The admin page's stylesheet and script, served as `/admin.css` and `/admin.js` (never inline: the content
 * security policy allows only files from this server). Plain CSS and plain browser JavaScript, small enough to
 * read in one sitting; no build step.
 */

/**
 * What the script does:
 *  - every few seconds (every second while a sign-in waits) fetches `/live` and swaps it in when it changed,
 *    so a completed sign-in or a delivered message shows without a reload;
 *  - posts the buttons' forms with fetch (CSRF token in a header), asks first where a form says `data-confirm`,
 *    and shows the outcome in the notice line;
 *  - ticks countdowns and ages once a second, correcting for the difference between the two clocks.
 * Everything it writes comes from the server's escaped HTML or goes through textContent.
 */
export const adminScript = String.raw`'use strict';
(function () {
  var live = document.getElementById('live');
  var notice = document.getElementById('notice');
  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
  var lastText = null;
  var timer = null;
  var skewMs = 0; // server clock minus browser clock
  var noticeAt = 0;

  function schedule() {
    clearTimeout(timer);
    var waiting = live.querySelector('[data-state="waiting-authorization"], [data-field="sign-in"]');
    timer = setTimeout(refresh, waiting ? 1000 : 3000);
  }

  function refresh() {
    return fetch(live.getAttribute('data-live-url'), { headers: { accept: 'text/html' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) {
        var serverTime = Number(response.headers.get('x-server-time'));
        if (serverTime) skewMs = serverTime - Date.now();
        if (response.status === 401 || response.status === 403) { location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (text) {
        if (text !== null && text !== lastText) {
          // The relay moved on (a sign-in completed, a message left): an older notice would describe the past.
          if (lastText !== null && Date.now() - noticeAt > 3000) say(null, '');
          lastText = text;
          live.innerHTML = text;
          tick();
        }
      })
      .catch(function () { /* the relay is restarting: the next round tries again */ })
      .then(schedule);
  }

  function say(ok, text, link) {
    noticeAt = Date.now();
    notice.className = 'notice' + (ok === true ? ' ok' : ok === false ? ' failed' : '');
    notice.textContent = text;
    if (link && /^https?:\/\//.test(link)) {
      var a = document.createElement('a');
      a.href = link;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.textContent = ' Open the sign-in page';
      notice.appendChild(a);
    }
  }

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.matches || !form.matches('form.action')) return;
    event.preventDefault();
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) return;
    var button = form.querySelector('button');
    if (button) button.disabled = true;
    say(null, (button ? button.textContent : 'Working') + '…');
    fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(new FormData(form)),
      headers: { accept: 'application/json', 'x-csrf-token': csrf },
      credentials: 'same-origin',
    })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          // A request that worked can still report a failure (a Test that did not pass): body.ok says which.
          if (response.ok) say(body.ok !== false, body.message || 'Done.', body.link);
          else say(false, (body.error && body.error.message) || 'Failed (HTTP ' + response.status + ').');
        });
      })
      .catch(function (err) { say(false, 'The relay did not answer: ' + err.message); })
      .then(refresh);
  });

  function countdown(ms) {
    if (ms <= 0) return 'expired';
    var s = Math.ceil(ms / 1000);
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  function age(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  function tick() {
    var now = Date.now() + skewMs;
    document.querySelectorAll('[data-countdown]').forEach(function (el) {
      el.textContent = countdown(Date.parse(el.getAttribute('data-countdown')) - now);
    });
    document.querySelectorAll('[data-age-since]').forEach(function (el) {
      el.textContent = age((now - Date.parse(el.getAttribute('data-age-since'))) / 1000);
    });
  }

  setInterval(tick, 1000);
  tick();
  schedule();
})();
`;

export const adminStylesheet = `
:root { --fg: #1d1f21; --muted: #5f6368; --line: #d0d4d9; --ok: #137333; --warn: #a05a00; --bad: #b3261e; --accent: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f6f7f9; }
header { display: flex; align-items: center; justify-content: space-between; padding: 0.6rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
h3 { font-size: 1rem; margin: 0 0 0.5rem; display: flex; flex-wrap: wrap; gap: 0.5rem 0.75rem; align-items: center; }
main { padding: 0 1.5rem 2rem; max-width: 80rem; }
.notice { margin: 0.75rem 1.5rem 0; min-height: 1.5em; color: var(--muted); }
.notice.ok { color: var(--ok); }
.notice.failed { color: var(--bad); }
.account { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
.account dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 0.2rem 1rem; margin: 0 0 0.75rem; }
.account dt { color: var(--muted); }
.account dd { margin: 0; }
.state { font-size: 0.85rem; padding: 0.1rem 0.6rem; border-radius: 1rem; border: 1px solid currentColor; }
.state-acquired { color: var(--ok); }
.state-waiting-authorization { color: var(--warn); }
.state-invalid { color: var(--bad); }
.state-not-acquired { color: var(--muted); }
.reason { color: var(--bad); }
.sign-in { border: 2px solid var(--warn); border-radius: 6px; padding: 0.75rem 1rem; margin-bottom: 0.75rem; background: #fffaf0; }
.user-code { font: 700 2.6rem/1.2 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; letter-spacing: 0.2em; margin: 0.25rem 0; white-space: nowrap; }
/* A doctor's fix is a command to copy: monospace, and it wraps anywhere so a long PowerShell line never widens the page. */
code.fix { display: inline-block; margin-top: 0.2rem; font: 0.85rem/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; overflow-wrap: anywhere; white-space: pre-wrap; }
.countdown { font-variant-numeric: tabular-nums; font-weight: 600; }
.actions, .row-actions { display: flex; flex-wrap: wrap; gap: 0.5rem; }
form.action { margin: 0; }
button, a.button { font: inherit; padding: 0.3rem 0.9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
button:disabled { opacity: 0.6; cursor: progress; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); margin: 0.5rem 0; }
th, td { text-align: left; padding: 0.35rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
caption { text-align: left; color: var(--muted); padding: 0.25rem 0; }
td.ok, .status-delivered { color: var(--ok); font-weight: 600; }
td.failed, .status-dead { color: var(--bad); font-weight: 600; }
.status-held, .status-deferred { color: var(--warn); font-weight: 600; }
code.reply { font-size: 0.85em; color: var(--muted); }
.empty, .muted { color: var(--muted); }
.login form { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1.5rem; max-width: 22rem; margin: 3rem auto; display: grid; gap: 0.6rem; }
.login input { font: inherit; padding: 0.35rem 0.5rem; }
.login .notice { margin: 0; }
/* Long unbroken values (links, mailboxes, message ids, Exchange replies) wrap instead of widening the page
   (break-word, not anywhere: a desktop table keeps "delivered" whole and gives the width to the reason). */
a, dd, td, code, .notice, .sign-in p { overflow-wrap: break-word; }
/*
 * Phone width: an admin at the printer reads the device code here. Padding shrinks, the account's facts stack,
 * the code stays on one line at a size that fits, and each table row becomes a small card of label: value
 * (the labels come from data-label), so no table is wider than the screen.
 */
@media (max-width: 40rem) {
  header { padding: 0.5rem 0.75rem; }
  main { padding: 0 0.75rem 1.5rem; }
  .notice { margin: 0.5rem 0.75rem 0; }
  .account { padding: 0.75rem; }
  .account dl { grid-template-columns: minmax(0, 1fr); gap: 0; }
  .account dd { margin-bottom: 0.35rem; }
  .sign-in { padding: 0.6rem 0.75rem; }
  .user-code { font-size: clamp(1.5rem, 8.5vw, 2.6rem); letter-spacing: 0.08em; overflow-wrap: normal; white-space: nowrap; }
  table, thead, tbody, tr, th, td, caption { display: block; }
  table { border: 0; background: none; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  tr { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 0.5rem; padding: 0.25rem 0; }
  td { position: relative; border-bottom: 0; padding: 0.2rem 0.6rem 0.2rem 7.6rem; min-height: 1.8em; }
  td[data-label]::before { content: attr(data-label); position: absolute; left: 0.6rem; width: 6.5rem; color: var(--muted); font-weight: 400; }
  td.row-actions-cell { padding-left: 0.6rem; padding-top: 0.4rem; }
}
`;
