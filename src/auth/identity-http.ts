/**
 * MSAL's network module on node:https, so an extra CA (sandbox, private test platform) is trusted for the
 * identity host only, never process-wide (msal-node 7 uses the global fetch, which honours only
 * NODE_EXTRA_CA_CERTS set before start). Errors are thrown the way msal-node's own HttpClient throws them,
 * so MSAL classifies them the same: network failures as `network_error`, never as a grant problem.
 */
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { identityCalls } from './identity-call.js';
import { ClientAuthError, ClientAuthErrorCodes, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';

export interface IdentityHttpOptions {
  /** PEM text of an extra CA, trusted in addition to the system roots, for this client only. */
  extraCaPem?: string | null;
  /** Per-request time limit; MSAL passes one for discovery GETs, POSTs get this. */
  timeoutMs?: number;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

export function createIdentityHttpClient(opts: IdentityHttpOptions = {}): INetworkModule & { close(): void } {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 4,
    ...(opts.extraCaPem ? { ca: [...rootCertificates, opts.extraCaPem] } : {}),
  });
  const defaultTimeout = opts.timeoutMs ?? 30_000;

  function send<T>(method: 'GET' | 'POST', url: string, options: NetworkRequestOptions | undefined, timeout: number | undefined): Promise<NetworkResponse<T>> {
    return new Promise((resolve, reject) => {
      const body = method === 'POST' ? options?.body ?? '' : undefined;
      const req = https.request(url, {
        method,
        agent,
        headers: { ...options?.headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) },
        timeout: timeout ?? defaultTimeout,
      });
      req.on('timeout', () => req.destroy(new Error('Request timeout')));
      req.on('error', (err) => {
        const call = identityCalls.getStore();
        if (call) call.networkFailure = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`.trim();
        reject(networkError(err));
      });
      req.on('response', (res) => {
        // The status is what tells a passing failure (5xx, 429) from a refusal, and MSAL does not keep it on
        // every error it throws: the token service reads it from the call's context (identity-call.ts).
        const call = identityCalls.getStore();
        if (call && method === 'POST') call.httpStatus = res.statusCode ?? null;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('response too large'));
          else chunks.push(chunk);
        });
        res.on('error', (err) => reject(networkError(err)));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            const body = JSON.parse(text) as T;
            const codes = (body as { error_codes?: unknown }).error_codes;
            if (call && Array.isArray(codes)) call.errorCodes = codes.filter((c): c is number => typeof c === 'number');
            resolve({ headers, status: res.statusCode ?? 0, body });
          } catch {
            // A proxy or load balancer page instead of JSON: transient, like a network failure.
            reject(new ClientAuthError(ClientAuthErrorCodes.networkError, '', `Network request failed: HTTP ${res.statusCode ?? 0} with a non-JSON body`));
          }
        });
      });
      if (body !== undefined) req.end(body);
      else req.end();
    });
  }

  return {
    sendGetRequestAsync: (url, options, timeout) => send('GET', url, options, timeout),
    sendPostRequestAsync: (url, options) => send('POST', url, options, undefined),
    close: () => agent.destroy(),
  };
}

/** MSAL's network_error, carrying the Node error code and message so the cause can be named (network-failure.ts). */
function networkError(err: Error & { code?: string }): ClientAuthError {
  const code = err.code && !err.message.includes(err.code) ? `${err.code} ` : '';
  return new ClientAuthError(ClientAuthErrorCodes.networkError, '', `Network request failed: ${code}${err.message}`);
}
