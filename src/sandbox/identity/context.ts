/** The state one simulator instance shares with its routes. */
import type { ClientRegistry } from './clients.js';
import type { DeviceCodeStore } from './device-codes.js';
import type { AuthorizationCodeStore, RefreshTokenStore } from './grants.js';
import type { JwtIssuer } from './jwt-issuer.js';

export interface SimulatorSettings {
  accessTokenLifetimeSec: number;
  reportedExpiresInSec: number;
  refreshTokenLifetimeSec: number;
  deviceCodeLifetimeSec: number;
  pollIntervalSec: number;
}

export interface SimulatorStats {
  requests: number;
  tokenRequests: number;
  byGrant: Record<string, number>;
}

export interface IdentityContext {
  /** `https://HOST:PORT`, no trailing slash. */
  readonly baseUrl: string;
  /** `HOST:PORT` as MSAL writes it in its cache (`environment`) and compares with knownAuthorities. */
  readonly hostPort: string;
  readonly verificationUri: string;
  readonly settings: SimulatorSettings;
  readonly jwt: JwtIssuer;
  readonly deviceCodes: DeviceCodeStore;
  readonly refreshTokens: RefreshTokenStore;
  readonly authCodes: AuthorizationCodeStore;
  readonly clients: ClientRegistry;
  readonly stats: SimulatorStats;
  /** The mailbox the device-login page is filled in with, or null (the person types one). */
  readonly expectedMailbox: string | null;
}

/** The v2.0 issuer of a tenant (`iss` of ID tokens, `issuer` of the discovery document). */
export function v2IssuerOf(ctx: IdentityContext, tenantGuid: string): string {
  return `${ctx.baseUrl}/${tenantGuid}/v2.0`;
}
