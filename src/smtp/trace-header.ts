/** The Received: trace line the relay adds (RFC 5321 §4.4: every relay adds one). */
import type { SMTPServerSession } from 'smtp-server';

export function receivedHeader(session: SMTPServerSession, hostname: string): string {
  const helo = session.hostNameAppearsAs ? session.hostNameAppearsAs.replace(/[^\x21-\x7e]/g, '') : 'unknown';
  const protocol = `${session.transmissionType || 'ESMTP'}`;
  return (
    `Received: from ${helo} ([${session.remoteAddress}])\r\n` +
    `\tby ${hostname} (xoauth2-relay) with ${protocol} id ${session.id};\r\n` +
    `\t${new Date().toUTCString().replace('GMT', '+0000')}\r\n`
  );
}
