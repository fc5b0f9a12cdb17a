/** Telling the operator when an account needs a person: log lines with the fix, and an optional webhook. */
export { followAccountStates, fixFor, noticeFor, type AccountNotifier, type AccountNotifierOptions } from './account-notices.js';
export { Webhook, type WebhookOptions, type WebhookNotice } from './webhook.js';
