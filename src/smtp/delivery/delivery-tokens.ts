/**
 * What the delivery worker needs from the token services, as an interface so tests can drive it with a fake.
 */
import type { TokenServices } from '../../auth/token-services.js';
import type { TokenStateName } from '../../auth/token-state.js';

export interface DeliveryTokens {
  /** A valid access token for the account now; throws RelayError TOKEN_NOT_ACQUIRED / TOKEN_INVALID / TOKEN_REFRESH_FAILED. */
  accessTokenFor(account: string): Promise<{ token: string }>;
  /** Upstream refused `token`: one forced refresh, resolves the new token (same errors as accessTokenFor). */
  tokenRejected(account: string, token: string): Promise<{ token: string }>;
  /** The account's token state now. */
  stateOf(account: string): TokenStateName;
  /** Follows state changes of every account; returns the unsubscribe function. */
  onStateChange(listener: (account: string, state: TokenStateName) => void): () => void;
}

/** The daemon's adapter: DeliveryTokens over the real token services. */
export function deliveryTokensFrom(services: TokenServices): DeliveryTokens {
  return {
    accessTokenFor: (account) => services.accessTokenFor(account),
    tokenRejected: (account, token) => services.tokenRejected(account, token),
    stateOf: (account) => {
      try {
        return services.get(account).state.state;
      } catch {
        return 'not-acquired'; // an account removed from the config has no token
      }
    },
    onStateChange(listener) {
      const unsubscribers = services.all().map((service) => {
        const onState = (state: { state: TokenStateName }, name: string) => listener(name, state.state);
        service.on('state', onState);
        return () => service.off('state', onState);
      });
      return () => unsubscribers.forEach((off) => off());
    },
  };
}
