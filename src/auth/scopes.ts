/**
 * Scopes the relay asks for (docs/exchange-online.md §3). One delegated sign-in covers SMTP, IMAP and POP3 of a
 * mailbox, so the three protocol scopes are requested together; offline_access brings the refresh token.
 * Delegated `SMTP.SendAsApp` does not exist (invalid_scope): app-only tokens use `.default` instead.
 */
export const OUTLOOK_RESOURCE = 'https://outlook.office.com';
export const OUTLOOK_APP_RESOURCE = 'https://outlook.office365.com';

export const delegatedScopes = [
  `${OUTLOOK_RESOURCE}/SMTP.Send`,
  `${OUTLOOK_RESOURCE}/IMAP.AccessAsUser.All`,
  `${OUTLOOK_RESOURCE}/POP.AccessAsUser.All`,
  'offline_access',
] as const;

export const appOnlyScopes = [`${OUTLOOK_APP_RESOURCE}/.default`] as const;
