/**
 * The doctor against the sandbox: each emulated Exchange/Entra misconfiguration is switched on through the sandbox
 * mailbox's control API (or the identity simulator), and the doctor must name it and print its exact fix.
 */
import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { TokenServices } from '../../src/auth/token-services.js';
import { runDoctor, type DoctorOptions } from '../../src/checks/doctor/doctor.js';
import { formatReport, type DoctorReport, type DoctorStep } from '../../src/checks/doctor/findings.js';
import type { Config } from '../../src/config/schema.js';
import { SANDBOX_MAILBOX } from '../../src/sandbox/sandbox-config.js';
import { readFileSync } from 'node:fs';
import { APP_CLIENT_ID, APP_MAILBOX, KEY_ENV, startSandboxMailWorld, type SandboxMailWorld } from '../support/sandbox-mail-world.js';

let world: SandboxMailWorld;
let tokens: TokenServices;

before(async () => {
  world = await startSandboxMailWorld(() => ({
    devices: [{ name: 'myq', account: 'scanner', senderPolicy: 'keep', allowedSenders: ['reception@sandbox.test'], allowFrom: ['127.0.0.1/32'] }],
    imap: { listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }] },
    pop3: { listen: [{ host: '127.0.0.1', port: 0, tls: 'none' }] },
  }));
});

after(async () => {
  await world?.close();
});

// A token service per test, started after the test's sign-in (another process's sign-in is read at start).
async function startTokens(): Promise<void> {
  tokens = await TokenServices.create(world.env.config, world.env.logger, { ...process.env, ...KEY_ENV });
  await tokens.start();
}

beforeEach(async () => {
  await world.resetRules();
  world.env.sim.scriptTokenAnswer(null);
});

afterEach(async () => {
  await tokens?.stop();
});

function options(config: Config = world.env.config, extra: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    config,
    tokens,
    account: (name) => tokens.get(name),
    extraCaPem: readFileSync(config.upstreamTls.extraCaFile!, 'utf8'),
    logger: world.env.logger,
    ...extra,
  };
}

async function doctor(account: string, extra: Partial<DoctorOptions> = {}, config?: Config): Promise<DoctorReport> {
  const [report] = await runDoctor(options(config, extra), account);
  return report!;
}

function step(report: DoctorReport, check: string): DoctorStep {
  const found = report.steps.find((s) => s.check === check);
  assert.ok(found, `no step ${check} in:\n${formatReport(report)}`);
  return found;
}

function assertFinding(report: DoctorReport, check: string, code: string, fix: RegExp | string): void {
  const s = step(report, check);
  assert.equal(s.status, 'fail', formatReport(report));
  assert.equal(s.code, code, formatReport(report));
  if (typeof fix === 'string') assert.ok(s.fix?.includes(fix), `fix of ${check}: ${s.fix}`);
  else assert.match(s.fix ?? '', fix);
  assert.ok(s.cause && s.cause.length > 10, 'a cause in words');
  assert.match(formatReport(report), new RegExp(`FAIL  ${check.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
}

test('before any sign-in: the token step says so and how to get one; nothing else is tried', async () => {
  await startTokens();
  const report = await doctor('scanner');
  assertFinding(report, 'token', 'DOCTOR_TOKEN_NOT_ACQUIRED', 'xoauth2-relay login scanner');
  assert.equal(step(report, 'smtp-auth').status, 'skip');
  assert.equal(report.ok, false);
});

test('Conditional Access blocking the account (AADSTS53003) points at app-only and browser sign-in', async () => {
  // MSAL keeps only the error name of a refused device-code poll; a refresh keeps the AADSTS number, as here.
  await world.signIn();
  await startTokens();
  const token = await tokens.withAccessToken('scanner', (get) => get());
  world.env.sim.scriptTokenAnswer({ status: 400, error: 'invalid_grant', aadsts: 53003 });
  await tokens.tokenRejected('scanner', token.token).catch(() => undefined);
  world.env.sim.scriptTokenAnswer(null);
  const report = await doctor('scanner');
  assertFinding(report, 'token', 'DOCTOR_DEVICE_CODE_BLOCKED', /flow: client-credentials .*flow: browser/);
});

test('an app registration without the IMAP and POP permissions: the claims step names them and the portal path to add them', async () => {
  const clientId = world.env.config.accounts.scanner!.clientId;
  world.env.sim.limitDelegatedPermissions(clientId, ['SMTP.Send']);
  try {
    await world.signIn();
    await startTokens();
    const report = await doctor('scanner');
    assertFinding(report, 'claims', 'DOCTOR_SCOPE_MISSING', /API permissions .*Delegated: IMAP\.AccessAsUser\.All, POP\.AccessAsUser\.All; Grant admin consent/);
    assert.match(step(report, 'claims').detail, /missing IMAP\.AccessAsUser\.All, POP\.AccessAsUser\.All/);
  } finally {
    world.env.sim.limitDelegatedPermissions(clientId, null);
  }
});

test('signed in as another user than the mailbox: the claims step says who, and the two ways out', async () => {
  const services = await TokenServices.create(world.env.config, world.env.logger, { ...process.env, ...KEY_ENV });
  await services.start();
  await services.get('scanner').logout(); // a first sign-in, nothing stored before it
  const prompt = await services.get('scanner').startDeviceCode();
  world.env.sim.approve(prompt.userCode, 'desk@sandbox.test'); // the person signed in with their own account
  await prompt.done;
  await services.stop();
  await startTokens();
  const report = await doctor('scanner');
  assertFinding(report, 'claims', 'DOCTOR_OTHER_USER', /sign in as scanner@sandbox\.test .*Add-MailboxPermission -Identity scanner@sandbox\.test -User desk@sandbox\.test -AccessRights FullAccess/);
});

test('a working tenant: every check passes for the delegated and the app-only account (exit code 0 material)', async () => {
  await world.signIn();
  await startTokens();
  await world.setRules(SANDBOX_MAILBOX, { sendAs: ['reception@sandbox.test'] }); // the keep device's sender is granted
  const reports = await runDoctor(options());
  for (const report of reports) {
    assert.equal(report.ok, true, formatReport(report));
    assert.deepEqual(report.steps.map((s) => s.check).slice(0, 4), ['token', 'claims', 'smtp-auth', 'message-size']);
    assert.ok(report.steps.some((s) => s.check === 'imap' && s.status === 'pass'));
    assert.ok(report.steps.some((s) => s.check === 'pop3' && s.status === 'pass'));
  }
  const scanner = reports.find((r) => r.account === 'scanner')!;
  assert.match(step(scanner, 'claims').detail, /aud https:\/\/outlook\.office\.com, scp .*SMTP\.Send.*, user scanner@sandbox\.test/);
  const app = reports.find((r) => r.account === 'frontdesk')!;
  assert.match(step(app, 'claims').detail, new RegExp(`aud https://outlook\\.office365\\.com, roles .*, app ${APP_CLIENT_ID}`));
});

test('SMTP AUTH off for the tenant, then for the mailbox: each with its own fix', async () => {
  await world.signIn();
  await startTokens();
  await world.setRules('tenant', { smtpAuthDisabled: true });
  assertFinding(await doctor('scanner'), 'smtp-auth', 'DOCTOR_SMTP_AUTH_DISABLED_TENANT', 'Set-TransportConfig -SmtpClientAuthenticationDisabled $false');
  await world.setRules('tenant', { smtpAuthDisabled: false });
  await world.setRules(SANDBOX_MAILBOX, { smtpAuthDisabled: true });
  const report = await doctor('scanner');
  assertFinding(report, 'smtp-auth', 'DOCTOR_SMTP_AUTH_DISABLED_MAILBOX', `Set-CASMailbox -Identity ${SANDBOX_MAILBOX} -SmtpClientAuthenticationDisabled $false`);
  assert.match(step(report, 'smtp-auth').detail, /535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox/);
});

test('Send As: a keep device\'s sender without the grant is named with the Add-RecipientPermission line; granted, it passes', async () => {
  await world.signIn();
  await startTokens();
  const denied = await doctor('scanner');
  assertFinding(denied, 'send-as reception@sandbox.test', 'DOCTOR_SEND_AS_DENIED', `Add-RecipientPermission -Identity reception@sandbox.test -Trustee ${SANDBOX_MAILBOX} -AccessRights SendAs`);
  assert.match(step(denied, 'send-as reception@sandbox.test').detail, /550 5\.7\.60 SMTP; Client does not have permissions to send as this sender/);
  await world.setRules(SANDBOX_MAILBOX, { sendAs: ['reception@sandbox.test'] });
  const granted = await doctor('scanner', { sendTo: 'desk@sandbox.test' });
  assert.equal(step(granted, 'send-as reception@sandbox.test').status, 'pass');
  assert.equal(step(granted, 'send-to desk@sandbox.test').status, 'pass', formatReport(granted));
  assert.equal(granted.ok, true, formatReport(granted));
});

test('the mailbox takes smaller messages than devices may send: Set-Mailbox -MaxSendSize', async () => {
  await world.signIn();
  await startTokens();
  await world.setRules(SANDBOX_MAILBOX, { maxMessageBytes: 10 * 1024 * 1024 });
  assertFinding(await doctor('scanner'), 'message-size', 'DOCTOR_MESSAGE_SIZE', `Set-Mailbox -Identity ${SANDBOX_MAILBOX} -MaxSendSize 150MB`);
});

test('app-only: the mailbox taken out of the app\'s role scope is named per protocol with its role assignment', async () => {
  await startTokens();
  await world.setRules(APP_MAILBOX, { appRoles: [] });
  const report = await doctor('frontdesk');
  assertFinding(report, 'smtp-auth', 'DOCTOR_APP_ROLE_MISSING', `New-ManagementRoleAssignment -App ${APP_CLIENT_ID} -Role "Application SMTP.SendAsApp" -CustomResourceScope "xoauth2-relay mailboxes"`);
  assertFinding(report, 'imap', 'DOCTOR_APP_ROLE_MISSING', 'Role "Application IMAP.AccessAsApp"');
  assertFinding(report, 'pop3', 'DOCTOR_APP_ROLE_MISSING', 'Role "Application POP.AccessAsApp"');
  assert.match(step(report, 'smtp-auth').fix ?? '', new RegExp(`Test-ServicePrincipalAuthorization -Identity ${APP_CLIENT_ID} -Resource ${APP_MAILBOX}`));
  await world.setRules(APP_MAILBOX, { appRoles: ['smtp'] });
  const partly = await doctor('frontdesk');
  assert.equal(step(partly, 'smtp-auth').status, 'pass');
  assert.equal(step(partly, 'imap').code, 'DOCTOR_APP_ROLE_MISSING');
});

test('High Volume Email: devices that may send anywhere, an external recipient refused, and an app not added to the HVE account', async () => {
  await startTokens();
  const config = world.env.config;
  const hveConfig: Config = { ...config, smtp: { ...config.smtp, upstream: { ...config.smtp.upstream, hve: true } } };
  await world.setRules(APP_MAILBOX, { hve: true });
  const report = await doctor('frontdesk', { sendTo: 'someone@elsewhere.example' }, hveConfig);
  assertFinding(report, 'send-to someone@elsewhere.example', 'DOCTOR_HVE_EXTERNAL', /allowedRecipientDomains/);
  assert.match(step(report, 'send-to someone@elsewhere.example').detail, /550 5\.7\.54/);
  assertFinding(await doctor('scanner', {}, hveConfig), 'hve-recipients', 'DOCTOR_HVE_EXTERNAL', 'allowedRecipientDomains');
  await world.setRules(APP_MAILBOX, { hve: true, appRoles: [] });
  assertFinding(await doctor('frontdesk', {}, hveConfig), 'smtp-auth', 'DOCTOR_HVE_NOT_ALLOWED', `Add-HVEAppAccess -Identity ${APP_MAILBOX} -AppIds "${APP_CLIENT_ID}"`);
});
