/**
 * The Exchange Online settings the sandbox mailbox emulates, per mailbox and for the tenant, so tests, the
 * demo and the doctor can show every way a real tenant refuses the relay (docs/exchange-online.md §3, §6, §7).
 * Defaults are a tenant that lets the relay work; each switch turns one misconfiguration on. They are changed
 * through the control API (control-api.ts) and read on every command, so a change applies to the next one.
 */
import type { MailProtocol } from './token-check.js';

/** One mailbox's settings. */
export interface MailboxRules {
  /** `Set-CASMailbox -SmtpClientAuthenticationDisabled`: true/false overrides the tenant; null follows it. */
  smtpAuthDisabled: boolean | null;
  /** Addresses (or `@domain`) this mailbox has Send As rights on (`Add-RecipientPermission … -AccessRights SendAs`). */
  sendAs: string[];
  /**
   * RBAC for Applications: the protocols whose `Application … ` role is assigned to apps over a scope that
   * holds this mailbox. An app-only token is refused for a protocol not listed, whatever its `roles` claim.
   */
  appRoles: MailProtocol[];
  /** Concurrent authenticated SMTP sessions before `432 4.3.2 … sender thread limit exceeded` (Exchange: 3). */
  maxSmtpConnections: number;
  /** `Set-Mailbox -MaxSendSize`, in bytes (Exchange default 35 MB). */
  maxMessageBytes: number;
  /** A High Volume Email account: internal recipients only, tokens near expiry refused. */
  hve: boolean;
}

/** Tenant-wide settings. */
export interface TenantRules {
  /** `Set-TransportConfig -SmtpClientAuthenticationDisabled` (or Security Defaults). */
  smtpAuthDisabled: boolean;
  /** Accepted domains: "internal" for HVE. Empty: the domain of the HVE account itself. */
  acceptedDomains: string[];
  /** HVE refuses a token with less life left than this (`501 5.5.127`); Microsoft does not publish the figure. */
  hveMinTokenLifetimeSeconds: number;
}

export const defaultMailboxRules: Readonly<MailboxRules> = Object.freeze({
  smtpAuthDisabled: null,
  sendAs: [],
  appRoles: ['smtp', 'imap', 'pop3'] as MailProtocol[],
  maxSmtpConnections: 3,
  maxMessageBytes: 35 * 1024 * 1024,
  hve: false,
});

const defaultTenantRules: Readonly<TenantRules> = Object.freeze({ smtpAuthDisabled: false, acceptedDomains: [], hveMinTokenLifetimeSeconds: 300 });

const protocols: readonly MailProtocol[] = ['smtp', 'imap', 'pop3'];

/** A rejected patch: its message names the field and what is accepted. */
export class RulesError extends Error {}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '');
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** Validates a JSON patch field by field; unknown fields are refused so a typo never passes silently. */
function mailboxPatch(body: Record<string, unknown>): Partial<MailboxRules> {
  const out: Partial<MailboxRules> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === 'smtpAuthDisabled' && (value === null || typeof value === 'boolean')) out.smtpAuthDisabled = value;
    else if (key === 'sendAs' && isStringList(value)) out.sendAs = value.map((v) => v.toLowerCase());
    else if (key === 'appRoles' && isStringList(value) && value.every((p) => protocols.includes(p as MailProtocol))) out.appRoles = value as MailProtocol[];
    else if (key === 'maxSmtpConnections' && isCount(value)) out.maxSmtpConnections = value;
    else if (key === 'maxMessageBytes' && isCount(value)) out.maxMessageBytes = value;
    else if (key === 'hve' && typeof value === 'boolean') out.hve = value;
    else throw new RulesError(`${key}: not a mailbox setting or not a valid value (smtpAuthDisabled: true|false|null, sendAs: [addresses], appRoles: [smtp|imap|pop3], maxSmtpConnections, maxMessageBytes: positive integers, hve: boolean)`);
  }
  return out;
}

function tenantPatch(body: Record<string, unknown>): Partial<TenantRules> {
  const out: Partial<TenantRules> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === 'smtpAuthDisabled' && typeof value === 'boolean') out.smtpAuthDisabled = value;
    else if (key === 'acceptedDomains' && isStringList(value)) out.acceptedDomains = value.map((v) => v.toLowerCase().replace(/^@/, ''));
    else if (key === 'hveMinTokenLifetimeSeconds' && isCount(value)) out.hveMinTokenLifetimeSeconds = value;
    else throw new RulesError(`${key}: not a tenant setting or not a valid value (smtpAuthDisabled: boolean, acceptedDomains: [domains], hveMinTokenLifetimeSeconds: positive integer)`);
  }
  return out;
}

/** The settings in force; mailboxes never configured have the defaults. */
export class MailboxRulebook {
  private tenantRules: TenantRules = { ...defaultTenantRules, acceptedDomains: [] };
  private readonly mailboxes = new Map<string, MailboxRules>();

  get tenant(): Readonly<TenantRules> {
    return this.tenantRules;
  }

  for(mailbox: string): Readonly<MailboxRules> {
    return this.mailboxes.get(mailbox.toLowerCase()) ?? defaultMailboxRules;
  }

  /** Applies a JSON patch to one mailbox; throws RulesError for a bad field. */
  update(mailbox: string, body: Record<string, unknown>): MailboxRules {
    const next = { ...this.for(mailbox), ...mailboxPatch(body) };
    this.mailboxes.set(mailbox.toLowerCase(), next);
    return next;
  }

  updateTenant(body: Record<string, unknown>): TenantRules {
    this.tenantRules = { ...this.tenantRules, ...tenantPatch(body) };
    return this.tenantRules;
  }

  /** Back to a working tenant: every switch off. */
  reset(mailbox?: string): void {
    if (mailbox !== undefined) return void this.mailboxes.delete(mailbox.toLowerCase());
    this.mailboxes.clear();
    this.tenantRules = { ...defaultTenantRules, acceptedDomains: [] };
  }

  describe(): { tenant: TenantRules; mailboxes: Record<string, MailboxRules> } {
    return { tenant: this.tenantRules, mailboxes: Object.fromEntries(this.mailboxes) };
  }

  /** Where SMTP AUTH is switched off for this mailbox, if it is (the mailbox setting overrides the tenant's). */
  smtpAuthOff(mailbox: string): 'Mailbox' | 'Tenant' | null {
    const own = this.for(mailbox).smtpAuthDisabled;
    if (own !== null) return own ? 'Mailbox' : null;
    return this.tenantRules.smtpAuthDisabled ? 'Tenant' : null;
  }

  /** Exchange lets `mailbox` send as `address`: itself, or a Send As grant. */
  maySendAs(mailbox: string, address: string): boolean {
    const lower = address.toLowerCase();
    if (lower === mailbox.toLowerCase()) return true;
    return this.for(mailbox).sendAs.some((g) => (g.startsWith('@') ? lower.endsWith(g) : lower === g));
  }

  /** For an HVE account: whether `recipient` is inside the organisation. */
  isInternal(mailbox: string, recipient: string): boolean {
    const domain = recipient.slice(recipient.lastIndexOf('@') + 1).toLowerCase();
    const accepted = this.tenantRules.acceptedDomains.length > 0 ? this.tenantRules.acceptedDomains : [mailbox.slice(mailbox.lastIndexOf('@') + 1).toLowerCase()];
    return accepted.includes(domain);
  }
}
