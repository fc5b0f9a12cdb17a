/**
 * Interactive sign-ins of one account: device code (RFC 8628) and browser with PKCE (RFC 7636) through MSAL's
 * loopback redirect. At most one runs at a time: starting another cancels the first, so an operator who
 * presses "Get token" twice sees one code, the newest.
 */
import { PublicClientApplication, type AuthenticationResult, type DeviceCodeRequest } from '@azure/msal-node';

type DeviceCodeResponse = Parameters<DeviceCodeRequest['deviceCodeCallback']>[0];
import { RelayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { IdentityFailure } from './identity-errors.js';
import type { MsalApp } from './msal-app.js';

export interface DeviceCodePrompt {
  userCode: string;
  verificationUri: string;
  expiresAt: Date;
  message: string | null;
  /** Settles when the sign-in ends, either way (the outcome itself arrives through the callbacks). */
  done: Promise<void>;
}

interface DeviceCodeHandlers {
  onPrompt(prompt: Omit<DeviceCodePrompt, 'done'>): void;
  onResult(result: AuthenticationResult): Promise<unknown>;
  onFailure(failure: IdentityFailure): void;
}

interface BrowserOptions {
  redirectPort: number;
  loginHint: string;
  openBrowser(url: string): Promise<void>;
  onFailure(failure: IdentityFailure): void;
}

const BROWSER_SIGN_IN_LIMIT_MS = 15 * 60_000;

export class SignIn {
  private running: { cancel: boolean } | null = null;

  constructor(
    private readonly app: () => MsalApp,
    private readonly scopes: readonly string[],
    private readonly log: Logger,
    /** The token service's reading of a failure (it knows the host and what the network client saw). */
    private readonly classify: (err: unknown) => IdentityFailure,
  ) {}

  get active(): boolean {
    return this.running !== null;
  }

  cancel(): void {
    if (this.running) this.running.cancel = true;
    this.running = null;
  }

  private publicApp(): PublicClientApplication {
    const app = this.app();
    if (!(app instanceof PublicClientApplication)) throw new RelayError('FLOW_NOT_SUPPORTED', 'interactive sign-in needs a public client (flow device-code or browser)');
    return app;
  }

  /** Resolves when the platform has issued a code; MSAL then polls the token endpoint at the given interval. */
  deviceCode(handlers: DeviceCodeHandlers): Promise<DeviceCodePrompt> {
    const app = this.publicApp();
    this.cancel();
    // MSAL checks `cancel` on this very object between polls.
    const request = { scopes: [...this.scopes], cancel: false, deviceCodeCallback: (_: DeviceCodeResponse) => undefined };
    const run = { get cancel() { return request.cancel; }, set cancel(v: boolean) { request.cancel = v; } };
    this.running = run;

    return new Promise((resolvePrompt, rejectPrompt) => {
      let prompted = false;
      request.deviceCodeCallback = (response) => {
        prompted = true;
        const prompt = {
          userCode: response.userCode,
          verificationUri: response.verificationUri,
          expiresAt: new Date(Date.now() + response.expiresIn * 1000),
          message: response.message ?? null,
        };
        handlers.onPrompt(prompt);
        resolvePrompt({ ...prompt, done });
      };
      const done = app
        .acquireTokenByDeviceCode(request)
        .then(async (result) => {
          if (this.running === run) this.running = null;
          if (result && !request.cancel) await handlers.onResult(result);
        })
        .catch((err: unknown) => {
          if (this.running === run) this.running = null;
          if (request.cancel) return; // superseded or logged out: not a failure to show
          const failure = this.classify(err);
          if (!prompted) {
            rejectPrompt(new RelayError(failure.class === 'grant' ? 'SIGN_IN_FAILED' : 'TOKEN_REFRESH_FAILED', failure.reason, { cause: err }));
            return;
          }
          handlers.onFailure(failure);
        });
    });
  }

  /** Runs MSAL's interactive flow: loopback listener, PKCE, code exchange; resolves with the token. */
  async browser(opts: BrowserOptions): Promise<AuthenticationResult> {
    const app = this.publicApp();
    this.cancel();
    const run = { cancel: false };
    this.running = run;
    let timer: NodeJS.Timeout | undefined;
    try {
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RelayError('SIGN_IN_FAILED', 'nobody completed the browser sign-in within 15 minutes')), BROWSER_SIGN_IN_LIMIT_MS);
        timer.unref();
      });
      return await Promise.race([
        app.acquireTokenInteractive({
          scopes: [...this.scopes],
          loginHint: opts.loginHint,
          openBrowser: opts.openBrowser,
          ...(opts.redirectPort ? { preferredPort: opts.redirectPort } : {}),
          successTemplate: '<h1>Signed in</h1><p>xoauth2-relay has its token. You can close this window.</p>',
          errorTemplate: '<h1>Sign-in failed</h1><p>xoauth2-relay did not get a token: see its log, then start again.</p>',
        }),
        limit,
      ]);
    } catch (err) {
      const failure: IdentityFailure = err instanceof RelayError ? { class: 'expired', reason: err.message, error: err.code, aadsts: null } : this.classify(err);
      if (!run.cancel) opts.onFailure(failure);
      this.log.debug({ error: failure.error }, 'browser sign-in ended without a token');
      throw err instanceof RelayError ? err : new RelayError('SIGN_IN_FAILED', failure.reason, { cause: err });
    } finally {
      clearTimeout(timer);
      if (this.running === run) this.running = null;
    }
  }
}
