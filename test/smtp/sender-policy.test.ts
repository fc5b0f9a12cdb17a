import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { HeaderBlockEditor } from '../../src/smtp/header-block.js';
import { applySenderPolicy, envelopeSender, maySendAs, rewriteFromHeader, senderRulesFor, type SenderRules } from '../../src/smtp/sender-policy.js';
import { accountSchema } from '../../src/config/schema.js';

const MAILBOX = 'scanner@contoso.com';
const auto: SenderRules = { policy: 'auto', mailbox: MAILBOX, granted: ['reception@contoso.com', '@sales.contoso.com'] };
const keep: SenderRules = { ...auto, policy: 'keep' };

test('envelope sender: auto keeps the mailbox and granted senders, replaces any other; keep keeps all', () => {
  assert.equal(envelopeSender(auto, 'scan@printer.local'), MAILBOX);
  assert.equal(envelopeSender(auto, 'Reception@Contoso.com'), 'Reception@Contoso.com');
  assert.equal(envelopeSender(auto, 'anna@sales.contoso.com'), 'anna@sales.contoso.com');
  assert.equal(envelopeSender(auto, 'SCANNER@contoso.com'), 'SCANNER@contoso.com');
  assert.equal(envelopeSender(keep, 'scan@printer.local'), 'scan@printer.local');
  assert.equal(envelopeSender(keep, ''), MAILBOX);
  assert.equal(envelopeSender(auto, ''), MAILBOX);
  assert.equal(maySendAs(auto, 'evil@contoso.com.attacker.test'), false);
});

test('policy per device over the account; the pre-2026 names read as auto', () => {
  const account = accountSchema.parse({ mailbox: MAILBOX, tenantId: 'contoso.com', clientId: '66666666-7777-8888-9999-000000000000' });
  assert.equal(account.senderPolicy, 'auto', 'auto is the default');
  assert.equal(senderRulesFor(account).policy, 'auto');
  assert.equal(senderRulesFor(account, { senderPolicy: 'keep' }).policy, 'keep');
  for (const old of ['rewrite-envelope', 'rewrite-from'] as const) assert.equal(senderRulesFor({ ...account, senderPolicy: old }).policy, 'auto');
  assert.equal(senderRulesFor({ ...account, senderPolicy: 'keep' }, { senderPolicy: 'auto' }).policy, 'auto');
});

test('auto: a foreign From becomes the mailbox with the display name, the original in Reply-To and X-Original-From; a granted From stays', () => {
  const foreign = 'From: "Floor 2 Scanner" <noreply@printer.local>\r\nSubject: Scan';
  assert.equal(applySenderPolicy(foreign, auto), 'From: "Floor 2 Scanner" <scanner@contoso.com>\r\nX-Original-From: "Floor 2 Scanner" <noreply@printer.local>\r\nSubject: Scan\r\nReply-To: "Floor 2 Scanner" <noreply@printer.local>');
  const granted = 'From: Reception <reception@contoso.com>\r\nSubject: Scan';
  assert.equal(applySenderPolicy(granted, auto), granted);
  assert.equal(applySenderPolicy(foreign, keep), foreign);
  assert.equal(applySenderPolicy('Subject: none', auto), 'Subject: none\r\nFrom: scanner@contoso.com');
});

test('rewrite: From becomes the mailbox, display name kept, original in Reply-To and X-Original-From, Sender dropped', () => {
  const header = 'Subject: Scan\r\nFrom: "MFP Floor 2"\r\n <scan@printer.local>\r\nSender: scan@printer.local\r\nTo: a@contoso.com';
  const out = rewriteFromHeader(header, 'scanner@contoso.com');
  assert.equal(
    out,
    'Subject: Scan\r\nFrom: "MFP Floor 2" <scanner@contoso.com>\r\nX-Original-From: "MFP Floor 2" <scan@printer.local>\r\nTo: a@contoso.com\r\nReply-To: "MFP Floor 2" <scan@printer.local>',
  );
});

test('rewrite keeps an existing Reply-To and leaves a From that already is the mailbox alone', () => {
  const out = rewriteFromHeader('From: scan@printer.local\r\nReply-To: desk@contoso.com', 'scanner@contoso.com');
  assert.equal(out, 'From: scanner@contoso.com\r\nX-Original-From: scan@printer.local\r\nReply-To: desk@contoso.com');
  const same = 'From: Scanner <SCANNER@contoso.com>\r\nSubject: x';
  assert.equal(rewriteFromHeader(same, 'scanner@contoso.com'), same);
  assert.equal(rewriteFromHeader('Subject: no from', 'scanner@contoso.com'), 'Subject: no from\r\nFrom: scanner@contoso.com');
});

async function edit(chunks: string[], prefix = 'Received: x\r\n', max?: number): Promise<string> {
  const editor = new HeaderBlockEditor((h) => rewriteFromHeader(h, 'm@c.com'), prefix, max);
  return text(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(editor));
}

test('the header editor edits only the header, wherever the chunks split, and streams the body as is', async () => {
  const message = 'From: a@b.c\r\nSubject: s\r\n\r\nFrom: body line stays\r\n';
  const expected = 'Received: x\r\nFrom: m@c.com\r\nX-Original-From: a@b.c\r\nSubject: s\r\nReply-To: a@b.c\r\n\r\nFrom: body line stays\r\n';
  for (let cut = 0; cut <= message.length; cut++) {
    assert.equal(await edit([message.slice(0, cut), message.slice(cut)]), expected, `cut at ${cut}`);
  }
});

test('an endless header is passed through unedited instead of buffered', async () => {
  const huge = `From: a@b.c\r\n${'X-Junk: y\r\n'.repeat(100)}`;
  const out = await edit([huge, huge], 'R\r\n', 512);
  assert.equal(out, `R\r\n${huge}${huge}`);
});

test('a message with no body still gets its header edited', async () => {
  assert.equal(await edit(['From: a@b.c\r\n'], ''), 'From: m@c.com\r\nX-Original-From: a@b.c\r\nReply-To: a@b.c\r\n');
});
