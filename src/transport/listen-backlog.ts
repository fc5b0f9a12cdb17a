/**
 * Connections the kernel may hold completed but not yet accepted, for every device-facing listener. Node's default
 * (511) overflows when hundreds of devices connect at once while the loop is busy (logins, commits); past it, Linux
 * answers with SYN cookies and then drops the device's final ACK, so the device believes it is connected and waits
 * for a greeting that never comes (measured on IMAP: 1,305 of a 3,000-connection burst). The kernel caps this at
 * net.core.somaxconn (4096 by default).
 */
export const LISTEN_BACKLOG = 4096;
