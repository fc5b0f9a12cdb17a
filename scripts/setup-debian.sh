#!/usr/bin/env bash
# Installs what the end-to-end tests need on Debian bookworm (CI starts from a fresh machine) and makes sure the
# system-wide Postfix and Dovecot are NOT running: the tests start their own instances on 127.0.0.1 with private
# configuration in a temp dir (test/support/peers/), and never touch /etc/postfix or /etc/dovecot.
#
# Usage:  scripts/setup-debian.sh   (as root, or it re-runs itself with sudo)
# Idempotent: when every package is already installed it neither updates the package lists nor installs anything
# (set SETUP_FORCE_APT=1 to run apt-get anyway). Non-interactive throughout.
set -euo pipefail

# ---------------------------------------------------------------------------------------------------------------
# PACKAGES: the one list to extend (e.g. chromium for browser tests). Installed with --no-install-recommends.
# ---------------------------------------------------------------------------------------------------------------
PACKAGES=(
  postfix           # test peer: submission with STARTTLS, SASL through Dovecot, virtual(8) delivery
  dovecot-core      # test peer: SASL auth (oauth2 passdb, local JWT validation), maildirs
  dovecot-imapd     # test peer: IMAPS
  dovecot-pop3d     # test peer: POP3S
  ca-certificates   # system trust store (NODE_EXTRA_CA_CERTS points at its bundle)
  procps            # pgrep/ps: the e2e tests check that no daemon process is left behind
  chromium          # admin page tests: real headless Chromium driven by playwright-core (/usr/bin/chromium)
  fonts-dejavu-core # a known font for Chromium, so the admin page screenshots look the same on every machine
  systemd           # systemd-analyze verify and systemd-sysusers for the packaging tests (nothing is started)
  redis-server      # shared token store tests: the tests start their own redis-server on a loopback port
  haproxy           # the high-availability example's haproxy.cfg is checked with `haproxy -c` (nothing is started)
  tmux              # a real terminal for the hash-password prompt test (hidden input, visible prompt)
  swaks             # field-device tests: a real SMTP client (AUTH before/after STARTTLS, implicit TLS, POP-before-SMTP)
  fetchmail         # field-device tests: a real POP3/IMAP poller, as email-to-print servers use
  curl              # field-device tests: SMTP/IMAP/POP3 over implicit and STARTTLS, TLS version pinning
)
# ---------------------------------------------------------------------------------------------------------------

log() { printf 'setup-debian: %s\n' "$*"; }
die() { printf 'setup-debian: error: %s\n' "$*" >&2; exit 1; }

if [[ ${EUID} -ne 0 ]]; then
  command -v sudo >/dev/null || die "must run as root (or with sudo installed)"
  exec sudo --preserve-env=SETUP_FORCE_APT "$0" "$@"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian (bookworm)"

export DEBIAN_FRONTEND=noninteractive

missing_packages() {
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${db:Status-Status}\n' "${pkg}" 2>/dev/null | grep -qx installed || printf '%s\n' "${pkg}"
  done
}

POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""

# Restore the machine's own policy-rc.d (or remove ours) however the script ends.
restore_policy() {
  if [[ -n ${POLICY_BACKUP} ]]; then
    mv -f "${POLICY_BACKUP}" "${POLICY}"
  else
    rm -f "${POLICY}"
  fi
}

install_packages() {
  # "No configuration": no /etc/postfix/main.cf, so nothing can start a system-wide Postfix by accident.
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections

  # Exit code 101 tells invoke-rc.d not to start services: without it Debian starts Postfix and Dovecot
  # on all interfaces (ports 25, 143, 993, 110, 995) during the installation.
  if [[ -e ${POLICY} ]]; then
    POLICY_BACKUP=$(mktemp "${POLICY}.setup-debian.XXXXXX")
    cp -p "${POLICY}" "${POLICY_BACKUP}"
  fi
  trap restore_policy EXIT
  trap 'exit 130' INT TERM
  printf '#!/bin/sh\n# Temporary, written by xoauth2-relay scripts/setup-debian.sh\nexit 101\n' >"${POLICY}"
  chmod 755 "${POLICY}"

  log "apt-get update"
  apt-get update -q
  log "installing: ${PACKAGES[*]}"
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

  restore_policy
  trap - EXIT INT TERM
}

# Stops and disables only the system-wide instances (default config, /run/dovecot, /var/spool/postfix); the
# tests' own instances live in temp dirs and are not touched.
stop_system_daemons() {
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    local unit
    for unit in postfix dovecot; do
      if systemctl list-unit-files "${unit}.service" >/dev/null 2>&1; then
        systemctl disable --now "${unit}.service" >/dev/null 2>&1 || true
      fi
    done
  fi
  local pid
  if [[ -r /var/spool/postfix/pid/master.pid ]]; then
    pid=$(tr -dc '0-9' </var/spool/postfix/pid/master.pid)
    if [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null; then
      log "stopping the system-wide Postfix (pid ${pid})"
      postfix stop >/dev/null 2>&1 || kill "${pid}" 2>/dev/null || true
    fi
  fi
  if [[ -r /run/dovecot/master.pid ]]; then
    pid=$(tr -dc '0-9' </run/dovecot/master.pid)
    if [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null; then
      log "stopping the system-wide Dovecot (pid ${pid})"
      doveadm stop >/dev/null 2>&1 || kill "${pid}" 2>/dev/null || true
    fi
  fi
}

mapfile -t MISSING < <(missing_packages)
if [[ ${#MISSING[@]} -gt 0 || ${SETUP_FORCE_APT:-0} == 1 ]]; then
  [[ ${#MISSING[@]} -gt 0 ]] && log "missing: ${MISSING[*]}"
  install_packages
else
  log "all packages already installed: ${PACKAGES[*]}"
fi

stop_system_daemons

for binary in /usr/sbin/postfix /usr/sbin/dovecot /usr/bin/doveadm /usr/lib/dovecot/imap-login /usr/lib/dovecot/pop3-login; do
  [[ -x ${binary} ]] || die "${binary} missing after installation"
done
for account in postfix dovecot dovenull nobody; do
  getent passwd "${account}" >/dev/null || die "user ${account} missing after installation"
done
log "ready: Postfix $(postconf -dh mail_version), Dovecot $(dovecot --version | cut -d' ' -f1)"
