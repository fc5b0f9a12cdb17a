/**
 * Test messages for submission (CRLF line endings throughout, RFC 5322) and the DATA framing for them.
 */
import { randomUUID } from 'node:crypto';

function headers(from: string, to: string[], subject: string, contentType: string[]): string[] {
  return [
    `From: <${from}>`,
    `To: ${to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: ${subject}`,
    'Date: Sat, 22 Nov 2025 10:00:00 +0000',
    `Message-ID: <${randomUUID()}@${from.slice(from.lastIndexOf('@') + 1)}>`,
    'MIME-Version: 1.0',
    ...contentType,
  ];
}

/** A small text message whose body has lines that need dot-stuffing (RFC 5321 §4.5.2). */
export function sampleMessage(from: string, to: string[], subject: string): string {
  return [
    ...headers(from, to, subject, ['Content-Type: text/plain; charset=utf-8']),
    '',
    'Scan attached.',
    '.A line that starts with a dot.',
    '..and one with two.',
    '',
  ].join('\r\n');
}

/** A message whose body is `size` bytes of binary data, base64 in 76-character lines (as a scanner sends a PDF). */
export function attachmentMessage(from: string, to: string[], subject: string, size: number): string {
  const body = Buffer.alloc(size, 0xa5).toString('base64').replace(/.{76}/g, '$&\r\n');
  const head = headers(from, to, subject, ['Content-Type: application/pdf', 'Content-Transfer-Encoding: base64']);
  return `${head.join('\r\n')}\r\n\r\n${body}${body.endsWith('\n') ? '' : '\r\n'}`;
}

/** The bytes to send after DATA's 354: dot-stuffed and terminated by CRLF.CRLF (`message` must end with CRLF). */
export function dataPayload(message: string): string {
  return `${message.replace(/^\./gm, '..')}.\r\n`;
}

/**
 * A scan split the way Canon/Xerox units do (RFC 2046 §5.2.2): an original message (multipart/mixed with a text
 * part, a base64 PDF-like attachment and an attached message/rfc822, 7bit throughout as §5.2.2 requires) cut into
 * `total` fragments, each sent as its own message/partial message with the same id. The original's header block
 * opens the first fragment's body. Returns the original too, for checking the reassembly.
 */
export function partialMessages(from: string, to: string[], subject: string, total: number, attachmentBytes = 96 * 1024): { original: string; parts: string[] } {
  const boundary = `=_scan_${randomUUID()}`;
  const pdf = Buffer.from(Array.from({ length: attachmentBytes }, (_, i) => (i * 131 + 7) % 256)).toString('base64').replace(/.{76}/g, '$&\r\n');
  const original = [
    ...headers(from, to, subject, [`Content-Type: multipart/mixed;\r\n\tboundary="${boundary}"`]),
    '',
    'This is a multi-part message in MIME format.',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'Scanned 3 pages.   ',
    '.',
    '..a line that starts with dots',
    `--${boundary}`,
    'Content-Type: application/pdf; name="scan.pdf"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="scan.pdf"',
    '',
    pdf.replace(/\r\n$/, ''),
    `--${boundary}`,
    'Content-Type: message/rfc822',
    '',
    'From: <job@printer.local>',
    'Subject: job ticket',
    '',
    'copies=1',
    `--${boundary}--`,
    '',
  ].join('\r\n');
  const id = `${randomUUID()}@${from.slice(from.lastIndexOf('@') + 1)}`;
  const size = Math.ceil(original.length / total);
  const parts: string[] = [];
  for (let n = 1; n <= total; n++) {
    // Cut at line ends, so each fragment's body is a run of whole CRLF lines.
    const start = n === 1 ? 0 : original.indexOf('\r\n', (n - 1) * size) + 2;
    const end = n === total ? original.length : original.indexOf('\r\n', n * size) + 2;
    const head = headers(from, to, `${subject} (${n}/${total})`, [`Content-Type: message/partial; id="${id}";\r\n\tnumber=${n}; total=${total}`]);
    parts.push(`${head.join('\r\n')}\r\n\r\n${original.slice(start, end)}`);
  }
  return { original, parts };
}
