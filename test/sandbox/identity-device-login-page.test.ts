/**
 * The sandbox device-login page as a person meets it in the demo: it comes filled in with the mailbox the relay
 * expects, so submitting the form as it stands (Approve) signs that mailbox in; an emptied mailbox field gets a
 * sentence naming the expected mailbox, not `'' is not a mailbox address`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startIdentitySimulator, type IdentitySimulator } from '../../src/sandbox/identity/simulator.js';
import { deviceCodeFlow, httpsRequest, publicApp } from './support/identity-fixtures.js';

const expected = 'scanner@sandbox.test';
let sim: IdentitySimulator;

before(async () => {
  sim = await startIdentitySimulator({ pollIntervalSec: 0.1, expectedMailbox: expected });
});
after(() => sim.close());

/** The form's fields as the page renders them: what a browser posts when the person changes nothing. */
function formFields(page: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of page.matchAll(/<input [^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]!] = m[2]!;
  return fields;
}

test('the page opened from the link is filled in with the code and the expected mailbox; Approve as it stands signs it in', async () => {
  const result = await deviceCodeFlow(publicApp(sim), async (userCode) => {
    const page = await httpsRequest(`${sim.verificationUri}?user_code=${userCode}`, { ca: sim.caCertPem });
    assert.equal(page.status, 200);
    const fields = formFields(page.text);
    assert.deepEqual(fields, { user_code: userCode, upn: expected });

    const emptied = await httpsRequest(sim.verificationUri, { ca: sim.caCertPem, form: { ...fields, upn: '', action: 'approve' } });
    assert.equal(emptied.status, 400);
    assert.match(emptied.text, /Enter the mailbox to sign in as \(the relay expects scanner@sandbox\.test\)/);
    assert.deepEqual(formFields(emptied.text), { user_code: userCode, upn: expected }, 'the form comes back filled in');

    const done = await httpsRequest(sim.verificationUri, { ca: sim.caCertPem, form: { ...fields, action: 'approve' } });
    assert.equal(done.status, 200);
    assert.match(done.text, /signed in as <b>scanner@sandbox\.test<\/b>/);
  });
  assert.equal(result?.account?.username, expected);
});

test('login_hint in the link wins over the expected mailbox', async () => {
  const page = await httpsRequest(`${sim.verificationUri}?user_code=ABC&login_hint=other%40sandbox.test`, { ca: sim.caCertPem });
  assert.equal(formFields(page.text).upn, 'other@sandbox.test');
});
