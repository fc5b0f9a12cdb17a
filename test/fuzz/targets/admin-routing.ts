/**
 * The admin HTTP routing under generated requests (admin password set, no session): known and made-up paths
 * with odd encodings, every method, forged cookies, CSRF tokens and Origins, odd bodies and content types.
 * Properties: every request gets a well-formed answer that is never a 500, nothing changes state without a
 * session (the account stays "not acquired", the spool untouched), and afterwards the page still answers and the
 * right password logs in.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import fc from 'fast-check';
import { hashPassword } from '../../../src/auth/password-hash.js';
import { startAdminWorld } from '../../admin/support/admin-world.js';
import type { FuzzTarget } from '../fuzz-target.js';

const PASSWORD = 'fuzz admin password, never generated';
interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

const segment = fc.oneof(fc.constantFrom('api', 'accounts', 'scanner', 'get-token', 'delete-token', 'test', 'messages', 'retry', 'drop', 'login', 'logout', 'live', 'session', 'metrics', 'healthz', '..', '%2e%2e', '%00', '%E0%A4%A', '%', ''), fc.webSegment());
const path = fc.oneof(
  fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`),
  fc.tuple(fc.constantFrom('/', '/api/status', '/login', '/api/accounts/scanner/get-token'), fc.webQueryParameters()).map(([p, q]) => `${p}?${q}`),
  fc.constantFrom('*', '//', '/\\', 'http://evil.example/'),
);
const header = fc.oneof(fc.stringMatching(/^[\x21-\x7e]{0,40}$/), fc.constantFrom('null', 'https://evil.example', 'http://127.0.0.1'));
const req: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'GETX'),
  path,
  headers: fc.record(
    {
      cookie: fc.oneof(header, fc.string({ maxLength: 30 }).map((v) => `xoauth2_relay_admin=${encodeURIComponent(v)}; xoauth2_relay_login=${encodeURIComponent(v)}`)),
      origin: header,
      'x-csrf-token': header,
      'sec-fetch-site': fc.constantFrom('same-origin', 'cross-site', 'none', 'x'),
      'content-type': fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x'),
      accept: fc.constantFrom('text/html', 'application/json', '*/*'),
    },
    { requiredKeys: [] },
  ),
  body: fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)), fc.constantFrom('password=guess&loginToken=x&csrfToken=y', '{"password":"guess"}')),
});

function send(port: number, r: Req, localAddress = '127.0.0.1'): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const body = r.method === 'GET' || r.method === 'HEAD' ? '' : r.body;
    const out = request({ host: '127.0.0.1', localAddress, port, method: r.method, path: r.path, headers: { ...r.headers, 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    out.on('timeout', () => out.destroy(new Error('no answer within 10 s')));
    out.on('error', reject);
    out.end(body);
  });
}

export const adminRoutingTarget: FuzzTarget<Req> = {
  name: 'admin-routing',
  async setup() {
    const world = await startAdminWorld({ adminPasswordHash: await hashPassword(PASSWORD) });
    const port = world.admin.port;
    const before = JSON.stringify(await world.daemon.spool.list());
    return {
      arbitrary: req,
      async check(r) {
        let answer: { status: number };
        try {
          answer = await send(port, r);
        } catch (err) {
          // Node's HTTP client refuses some generated paths and headers itself: nothing reached the server.
          if ((err as NodeJS.ErrnoException).code === 'ERR_UNESCAPED_CHARACTERS' || (err as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') return;
          throw err;
        }
        assert.ok(answer.status >= 200 && answer.status < 600 && answer.status !== 500, `${r.method} ${r.path}: ${answer.status}`);
        assert.equal(world.daemon.tokens.get('scanner').state.state, 'not-acquired', `${r.method} ${r.path} changed the account without a session`);
        assert.equal(JSON.stringify(await world.daemon.spool.list()), before, 'the spool changed without a session');
      },
      async afterwards() {
        assert.equal((await send(port, { method: 'GET', path: '/healthz', headers: {}, body: '' })).status, 200);
        // From another address: the generated wrong passwords have put 127.0.0.1 under the admin login back-off.
        const login = await send(port, { method: 'POST', path: '/api/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }) }, '127.0.0.2');
        assert.equal(login.status, 200, 'the right password logs in after the run');
      },
      stop: () => world.close(),
    };
  },
};
