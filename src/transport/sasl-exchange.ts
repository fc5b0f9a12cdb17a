/**
 * The server side of a device's SASL exchange (PLAIN, RFC 4616; LOGIN, draft-murchison-sasl-login), the same for
 * IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH (RFC 5034): an optional initial response (`=` is an empty
 * one), continuations until the credentials are complete, `*` cancels. The protocol front supplies `challenge`,
 * which sends one continuation and returns the client's answer line. Results carry a password: never log them.
 */
import { LOGIN_PASSWORD_PROMPT, LOGIN_USERNAME_PROMPT, decodeLoginField } from '../sasl/login.js';
import { decodePlain } from '../sasl/plain.js';

/** What devices may use, in the order they are advertised. */
export const deviceSaslMechanisms = ['PLAIN', 'LOGIN'] as const;
export type DeviceSaslMechanism = (typeof deviceSaslMechanisms)[number];

export type SaslResult =
  | { outcome: 'credentials'; username: string; password: string }
  | { outcome: 'cancelled' }
  | { outcome: 'malformed'; reason: string }
  | { outcome: 'closed' };

/** Sends a continuation carrying `base64` (possibly empty) and resolves the client's answer, or null when it left. */
export type SaslChallenge = (base64: string) => Promise<string | null>;

export function isDeviceSaslMechanism(name: string): name is DeviceSaslMechanism {
  return (deviceSaslMechanisms as readonly string[]).includes(name);
}

/** Runs one exchange; `initialResponse` is undefined when the client sent none. */
export async function runSaslExchange(mechanism: DeviceSaslMechanism, initialResponse: string | undefined, challenge: SaslChallenge): Promise<SaslResult> {
  return mechanism === 'PLAIN' ? plain(initialResponse, challenge) : login(initialResponse, challenge);
}

/** Initial response as sent ("=" is the empty response, RFC 4959 §3 / RFC 5034 §4). */
function initial(value: string | undefined): string | undefined {
  return value === '=' ? '' : value;
}

async function answer(challenge: SaslChallenge, base64: string): Promise<string | { outcome: 'cancelled' } | { outcome: 'closed' }> {
  const line = await challenge(base64);
  if (line === null) return { outcome: 'closed' };
  if (line.trim() === '*') return { outcome: 'cancelled' };
  return line.trim();
}

async function plain(initialResponse: string | undefined, challenge: SaslChallenge): Promise<SaslResult> {
  let response = initial(initialResponse);
  if (response === undefined) {
    const got = await answer(challenge, '');
    if (typeof got !== 'string') return got;
    response = got;
  }
  const credentials = decodePlain(response);
  if (!credentials) return { outcome: 'malformed', reason: 'not a valid PLAIN response' };
  // Acting as another identity (authzid) means nothing here: a device is its user name.
  if (credentials.authzid !== '' && credentials.authzid !== credentials.username) return { outcome: 'malformed', reason: 'authorization identity not supported' };
  return { outcome: 'credentials', username: credentials.username, password: credentials.password };
}

async function login(initialResponse: string | undefined, challenge: SaslChallenge): Promise<SaslResult> {
  // Some clients put the user name in the initial response; an empty one means "ask me".
  let userField = initial(initialResponse);
  if (userField === undefined || userField === '') {
    const got = await answer(challenge, LOGIN_USERNAME_PROMPT);
    if (typeof got !== 'string') return got;
    userField = got;
  }
  const username = decodeLoginField(userField, 'username');
  if (username === null) return { outcome: 'malformed', reason: 'not a valid LOGIN user name' };
  const passField = await answer(challenge, LOGIN_PASSWORD_PROMPT);
  if (typeof passField !== 'string') return passField;
  const password = decodeLoginField(passField, 'password');
  if (password === null) return { outcome: 'malformed', reason: 'not a valid LOGIN password' };
  return { outcome: 'credentials', username, password };
}
