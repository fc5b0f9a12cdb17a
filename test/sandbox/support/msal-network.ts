/**
 * An MSAL `system.networkClient` (INetworkModule) on node:https with its own trust anchors.
 *
 * msal-node 7's default client uses the global fetch, which trusts only the system store (plus
 * NODE_EXTRA_CA_CERTS read at process start), and has no agent option any more. This one takes the CA to
 * trust for the identity host. To be replaced by the production client in src/auth.
 */
import { Agent, request } from 'node:https';
import { AuthError, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';

export interface HttpsNetworkClientOptions {
  /** PEM CA certificate(s) trusted for every request. */
  ca: string;
  /** Timeout for requests MSAL gives none (POSTs); default 30 s. */
  timeoutMs?: number;
}

export class HttpsNetworkClient implements INetworkModule {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(opts: HttpsNetworkClientOptions) {
    this.agent = new Agent({ ca: opts.ca, keepAlive: false });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  /** Frees the agent's sockets. */
  destroy(): void {
    this.agent.destroy();
  }

  private send<T>(method: 'GET' | 'POST', url: string, options: NetworkRequestOptions = {}, timeout?: number): Promise<NetworkResponse<T>> {
    const body = method === 'POST' ? (options.body ?? '') : undefined;
    const headers: Record<string, string | number> = { ...(options.headers ?? {}) };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const correlationId = options.correlationId ?? '';
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.agent, timeout: timeout ?? this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new AuthError('network_error', correlationId, `Network request failed: ${err.message}`)));
        res.on('end', () => {
          const responseHeaders: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) responseHeaders[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            // MSAL reads error bodies too (error, error_description, error_codes): parse whatever the status.
            resolve({ headers: responseHeaders, body: JSON.parse(text) as T, status: res.statusCode ?? 0 });
          } catch {
            reject(new AuthError('token_parsing_error', correlationId, `Failed to parse response (HTTP ${res.statusCode}): ${text.slice(0, 200)}`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('Request timeout')));
      req.on('error', (err) => reject(new AuthError('network_error', correlationId, `Network request failed: ${err.message}`)));
      req.end(body);
    });
  }
}
