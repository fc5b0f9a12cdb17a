/**
 * Refuses SMTP AUTH on a connection that is still plain text, at the AUTH command itself: before any SASL exchange,
 * so a device that sends `AUTH LOGIN` is never asked for its user name and password over clear text (a device that
 * puts them on the AUTH line, `AUTH PLAIN <base64>`, has sent them already; nothing on the server side can stop that,
 * but it is still refused and never logged in). The reply is the catalogue's TLS_REQUIRED one, RFC 3207 §4's
 * `530 5.7.0 Must issue a STARTTLS command first`.
 *
 * Why here and not in onAuth: smtp-server calls onAuth only after the SASL exchange, and its own switch
 * (`allowInsecureAuth: false`) answers `538 5.7.0`, a code RFC 4954 gives to "encryption required for the requested
 * mechanism", not the one devices and the issue expect. AUTH stays advertised before STARTTLS so that a device that
 * tries it sees this reply, which a person can act on, rather than "server does not support authentication".
 *
 * The seam is smtp-server's per-command handler (`handler_AUTH`, looked up on the connection per command); it is
 * replaced on each connection by prompt-greeting.ts's connect(); test/transport/field-tls.test.ts (swaks: 530 and no
 * 334 prompt) fails if smtp-server stops dispatching through it.
 */
import { RelayError } from '../errors.js';

/** The parts of smtp-server's connection this module drives (not in @types/smtp-server). */
export interface AuthConnectionInternals {
  secure: boolean;
  remoteAddress: string;
  send(code: number, text: string, context: false): void;
  handler_AUTH(command: Buffer | string, callback: () => void): void;
}

/** Wraps `connection`'s AUTH handler: refused with TLS_REQUIRED while the connection is plain; `refused` is told. */
export function refuseAuthBeforeTls(connection: AuthConnectionInternals, refused: (remote: string) => void): void {
  const handle = connection.handler_AUTH.bind(connection);
  connection.handler_AUTH = (command, callback) => {
    if (connection.secure) return handle(command, callback);
    refused(connection.remoteAddress);
    const reply = new RelayError('TLS_REQUIRED').replyFor('smtp'); // "530 5.7.0 Must issue a STARTTLS command first"
    // The catalogue's text carries its enhanced status code; `false`: smtp-server adds none of its own.
    connection.send(Number(reply.slice(0, 3)), reply.slice(4), false);
    callback();
  };
}
