/**
 * Reads the access token for an account out of MSAL's serialized cache (the JSON format all MSAL libraries
 * share), so the token service can serve a token another process or a sign-in just stored without any network
 * request: `acquireTokenSilent` without forceRefresh would instead refresh by MSAL's 5-minute margin, not ours.
 */

interface SerializedAccessToken {
  home_account_id?: string;
  secret?: string;
  expires_on?: string;
  target?: string;
  credential_type?: string;
}

export interface StoredAccessToken {
  secret: string;
  expiresAt: Date;
}

/**
 * The longest-lived access token for `homeAccountId` ('' for app-only tokens) whose scopes include `scope`
 * (compared without case, as MSAL stores them), or null.
 */
export function storedAccessToken(serializedCache: string, wanted: { homeAccountId: string; scope: string }): StoredAccessToken | null {
  let cache: { AccessToken?: Record<string, SerializedAccessToken> };
  try {
    cache = JSON.parse(serializedCache) as typeof cache;
  } catch {
    return null;
  }
  const scope = wanted.scope.toLowerCase();
  let best: StoredAccessToken | null = null;
  for (const entry of Object.values(cache.AccessToken ?? {})) {
    if ((entry.home_account_id ?? '') !== wanted.homeAccountId || !entry.secret || !entry.expires_on) continue;
    if (entry.credential_type && entry.credential_type !== 'AccessToken') continue;
    const scopes = (entry.target ?? '').toLowerCase().split(/\s+/);
    if (!scopes.includes(scope)) continue;
    const expiresAt = new Date(Number(entry.expires_on) * 1000);
    if (!Number.isFinite(expiresAt.getTime())) continue;
    if (!best || expiresAt > best.expiresAt) best = { secret: entry.secret, expiresAt };
  }
  return best;
}
