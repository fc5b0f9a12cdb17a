/**
 * A relay (one IMAP and one POP3 listener) in a process of its own, so a test can measure the relay's memory
 * and nothing else. Driven over IPC: `start` (config, a fixed access token, the upstream CA) → `ready` with the
 * ports; `mark` starts a peak-RSS window; `peak` reports it; `stop` closes and exits.
 */
import { DeviceDirectory } from '../../../src/auth/device-directory.js';
import { FailureThrottle } from '../../../src/auth/failure-throttle.js';
import type { Config } from '../../../src/config/schema.js';
import { ImapListener } from '../../../src/imap/imap-listener.js';
import { createLogger } from '../../../src/log.js';
import { Pop3Listener } from '../../../src/pop3/pop3-listener.js';
import { accountTokens } from '../../../src/auth/account-tokens.js';

export type ChildRequest =
  | { type: 'start'; config: Config; token: string; mailbox: string; upstreamExtraCaPem: string }
  | { type: 'mark' }
  | { type: 'peak' }
  | { type: 'stop' };

export type ChildReply = { type: 'ready'; imapPort: number; pop3Port: number } | { type: 'marked'; rss: number } | { type: 'peak'; rss: number; peak: number };

const send = (reply: ChildReply) => process.send!(reply);
let listeners: Array<ImapListener | Pop3Listener> = [];
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);

process.on('message', (request: ChildRequest) => {
  void (async () => {
    if (request.type === 'start') {
      const tokens = accountTokens({
        accessTokenFor: async () => ({ token: request.token, mailbox: request.mailbox, expiresAt: new Date(Date.now() + 3600_000) }),
        tokenRejected: async () => ({ token: request.token, mailbox: request.mailbox, expiresAt: new Date(Date.now() + 3600_000) }),
      });
      const common = {
        config: request.config,
        devices: new DeviceDirectory(request.config.devices),
        throttle: new FailureThrottle(),
        tls: null,
        tokens,
        upstreamExtraCaPem: request.upstreamExtraCaPem,
        logger: createLogger({ level: 'warn', destination: process.stderr as never }),
      };
      const imap = new ImapListener({ ...common, listen: { host: '127.0.0.1', port: 0, tls: 'none', loginBeforeTls: 'refuse' } });
      const pop3 = new Pop3Listener({ ...common, listen: { host: '127.0.0.1', port: 0, tls: 'none', loginBeforeTls: 'refuse' } });
      listeners = [imap, pop3];
      send({ type: 'ready', imapPort: await imap.listen(), pop3Port: await pop3.listen() });
    } else if (request.type === 'mark') {
      peak = process.memoryUsage().rss;
      send({ type: 'marked', rss: peak });
    } else if (request.type === 'peak') {
      send({ type: 'peak', rss: process.memoryUsage().rss, peak });
    } else {
      clearInterval(sampler);
      await Promise.all(listeners.map((l) => l.close()));
      process.disconnect();
    }
  })();
});
