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
