/**
 * Settings that still work but have a better replacement: `check-config` prints one line for each, so an
 * operator upgrading learns what changed without the relay refusing the old file.
 */
import type { Config } from './schema.js';

/** One line per deprecated setting in use, naming the key and what to write instead. */
export function deprecationNotes(config: Config): string[] {
  const notes: string[] = [];
  for (const [name, account] of Object.entries(config.accounts)) {
    if (account.senderPolicy === 'rewrite-envelope' || account.senderPolicy === 'rewrite-from') {
      notes.push(
        `accounts.${name}.senderPolicy = ${account.senderPolicy} is deprecated and now acts as auto: Exchange also checks the From header ` +
          '(554 5.2.0 SendAsDenied), so a sender the mailbox may not use is replaced in MAIL FROM and From, the original kept in Reply-To; ' +
          'write senderPolicy: auto (or keep, with the granted senders in sendAsGranted)',
      );
    }
  }
  return notes;
}
