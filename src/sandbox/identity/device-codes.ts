/**
 * Device authorization grant state (RFC 8628): the device code a client polls with, the user code a person
 * types on the verification page, and the person's answer.
 */
import { randomInt } from 'node:crypto';
import { isMailbox, randomOpaque } from './ids.js';
import { oauthErrors } from './oauth-errors.js';
import type { DelegatedScopeRequest } from './scopes.js';

// RFC 8628 §6.1: user codes are typed by people, so no characters that look alike (0/O, 1/I/L, 5/S, 8/B) and
// no vowels (no words spelled by accident). 9 characters like Microsoft's; 22^9 ≈ 1.2e12 possible codes.
const userCodeAlphabet = 'CDFGHJKMNPQRTVWXYZ2346';
const userCodeLength = 9;

export type DeviceAuthorizationStatus = 'pending' | 'approved' | 'declined' | 'redeemed';

export interface DeviceAuthorization {
  readonly deviceCode: string;
  readonly userCode: string;
  readonly clientId: string;
  /** The tenant path segment the client used (a GUID, a domain, or common/organizations). */
  readonly tenantSegment: string;
  readonly scopes: DelegatedScopeRequest;
  /** The raw `scope` parameter, for display. */
  readonly scopeParam: string;
  readonly expiresAt: number;
  status: DeviceAuthorizationStatus;
  /** The mailbox that approved. */
  upn?: string;
  /** When the client last polled (ms), to detect polling faster than the interval. */
  lastPollAt?: number;
}

/** Normalises what a person typed (RFC 8628 §6.1: ignore case, spaces and dashes). */
export function normaliseUserCode(input: string): string {
  return input.toUpperCase().replace(/[\s-]+/g, '');
}

export class DeviceCodeStore {
  private readonly byDeviceCode = new Map<string, DeviceAuthorization>();
  private readonly byUserCode = new Map<string, DeviceAuthorization>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly pollIntervalMs: number,
  ) {}

  /** Starts a device authorization (RFC 8628 §3.2). */
  create(clientId: string, tenantSegment: string, scopes: DelegatedScopeRequest, scopeParam: string): DeviceAuthorization {
    this.sweep();
    let userCode: string;
    do {
      userCode = Array.from({ length: userCodeLength }, () => userCodeAlphabet[randomInt(userCodeAlphabet.length)]).join('');
    } while (this.byUserCode.has(userCode));
    const auth: DeviceAuthorization = {
      deviceCode: randomOpaque(48),
      userCode,
      clientId,
      tenantSegment,
      scopes,
      scopeParam,
      expiresAt: Date.now() + this.lifetimeMs,
      status: 'pending',
    };
    this.byDeviceCode.set(auth.deviceCode, auth);
    this.byUserCode.set(userCode, auth);
    return auth;
  }

  /** The authorization a person refers to with a user code; throws a readable Error when there is none. */
  private pendingByUserCode(userCode: string): DeviceAuthorization {
    const auth = this.byUserCode.get(normaliseUserCode(userCode));
    if (!auth) throw new Error(`Unknown code '${userCode}'. Check the code shown on the device.`);
    if (Date.now() >= auth.expiresAt) throw new Error(`The code '${auth.userCode}' has expired. Start the sign-in again on the device.`);
    if (auth.status !== 'pending') throw new Error(`The code '${auth.userCode}' was already ${auth.status === 'declined' ? 'declined' : 'used'}.`);
    return auth;
  }

  /** The person signs in as `upn` and approves; the next poll gets tokens. */
  approve(userCode: string, upn: string): DeviceAuthorization {
    if (!isMailbox(upn)) throw new Error(`'${upn}' is not a mailbox address (user@domain).`);
    const auth = this.pendingByUserCode(userCode);
    auth.status = 'approved';
    auth.upn = upn.trim();
    return auth;
  }

  /** The person declines; the next poll gets `authorization_declined` (RFC 8628 §3.5). */
  decline(userCode: string): DeviceAuthorization {
    const auth = this.pendingByUserCode(userCode);
    auth.status = 'declined';
    return auth;
  }

  /** What a user code refers to, if anything (for the verification page). */
  peek(userCode: string): DeviceAuthorization | undefined {
    return this.byUserCode.get(normaliseUserCode(userCode));
  }

  pending(): DeviceAuthorization[] {
    const now = Date.now();
    return [...this.byDeviceCode.values()].filter((a) => a.status === 'pending' && now < a.expiresAt);
  }

  /**
   * One poll of the token endpoint (RFC 8628 §3.4/§3.5). Returns the approved authorization, now redeemed, or
   * throws the OAuth error the client must see.
   *
   * `slow_down` only when polls come less than HALF the interval apart. RFC 8628 would have us send it for any
   * poll before the interval has passed, but MSAL (msal-node DeviceCodeClient.acquireTokenWithDeviceCode) ends
   * its polling on every error except `authorization_pending`, `slow_down` included, and its sleep plus network
   * time makes polls land a little before or after the interval: a strict check would fail honest clients.
   */
  poll(deviceCode: string, clientId: string): DeviceAuthorization {
    const auth = this.byDeviceCode.get(deviceCode);
    if (!auth) throw oauthErrors.badVerificationCode();
    if (auth.clientId !== clientId) throw oauthErrors.invalidGrant("The device code was issued to another client_id.");
    const now = Date.now();
    const previousPoll = auth.lastPollAt;
    auth.lastPollAt = now;
    if (auth.status === 'redeemed') throw oauthErrors.deviceCodeRedeemed();
    if (now >= auth.expiresAt) throw oauthErrors.deviceCodeExpired();
    if (auth.status === 'declined') throw oauthErrors.authorizationDeclined();
    if (auth.status === 'pending') {
      if (previousPoll !== undefined && now - previousPoll < this.pollIntervalMs / 2) throw oauthErrors.slowDown();
      throw oauthErrors.authorizationPending();
    }
    auth.status = 'redeemed';
    return auth;
  }

  /** Forgets authorizations long expired, so a long demo run does not grow without bound. */
  private sweep(): void {
    const cutoff = Date.now() - this.lifetimeMs;
    for (const auth of this.byDeviceCode.values()) {
      if (auth.expiresAt < cutoff) {
        this.byDeviceCode.delete(auth.deviceCode);
        this.byUserCode.delete(auth.userCode);
      }
    }
  }
}
