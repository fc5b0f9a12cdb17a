/**
 * Greets an SMTP client as soon as its connection is set up, without smtp-server's early-talker wait.
 *
 * smtp-server (3.x) holds every new connection for a fixed 100 ms before the greeting
 * (`SMTPConnection.init()`: `setTimeout(() => this.connectionReady(), 100)`), to catch spam bots that talk
 * before the banner. Measured on loopback: 101 ms from connect to greeting (min 101.1, p50 101.7 ms over 20
 * connections), against about 1 ms without it. For a printer that opens one connection per scan that wait was
 * the relay's whole floor: at most ~9 sessions/s per client. Our devices are known, logged-in or admitted
 * by address, on a LAN: the early-talker heuristic buys nothing here. A client that does talk before the
 * greeting is still refused: smtp-server answers `421 You talk too soon` to commands before `_ready`, and with
 * reverse lookups disabled the connection becomes ready synchronously within the socket's first tick.
 *
 * The seam is the SMTPServer INSTANCE's `connect(socket, socketOptions)`: smtp-server's own accept path calls it
 * for plain and implicit-TLS sockets, and the listener's auto-TLS front hands sockets to it as well. It does what
 * `SMTPServer.connect` does, except that the connection skips `init()`'s timer. It relies on smtp-server
 * internals (`connections`, `_onError`, `_onClientConnect`, `SMTPConnection#_setListeners`, `#connectionReady`);
 * test/smtp/prompt-greeting.test.ts fails when those change.
 */
import type { Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** The parts of smtp-server's connection this module drives (not in @types/smtp-server). */
interface ConnectionInternals {
  on(event: 'error', listener: (err: Error) => void): void;
  on(event: 'connect', listener: (data: unknown) => void): void;
  send(code: number, text: string, command: false): void;
  name: string;
  _setListeners(callback: () => void): void;
  connectionReady(): void;
}

/** The parts of smtp-server's server this module drives. */
interface ServerInternals {
  options: { maxClients?: number };
  connections: Set<unknown>;
  _onError(err: Error): void;
  _onClientConnect(data: unknown): void;
  connect(socket: Socket, socketOptions?: unknown): void;
}

type ConnectionConstructor = new (server: SMTPServer, socket: Socket, socketOptions?: unknown) => ConnectionInternals;

/** Marks servers given a prompt greeting (tests check the relay's listeners are among them). */
const PROMPT = Symbol('promptGreeting');

/**
 * Makes `server` greet new connections without the 100 ms early-talker wait. Returns the server. `prepare` sees
 * each new connection before it is set up (auth-before-tls.ts wraps its AUTH handler there).
 */
export function greetPromptly(server: SMTPServer, prepare?: (connection: unknown) => void): SMTPServer {
  const internals = server as unknown as ServerInternals & { [PROMPT]?: true };
  internals.connect = (socket: Socket, socketOptions?: unknown) => {
    const connection = new (SMTPConnection as unknown as ConnectionConstructor)(server, socket, socketOptions);
    prepare?.(connection);
    internals.connections.add(connection);
    connection.on('error', (err) => internals._onError(err));
    connection.on('connect', (data) => internals._onClientConnect(data));
    // SMTPConnection.init() without its timer: the same connection-limit check, then ready at once.
    connection._setListeners(() => {
      const max = internals.options.maxClients;
      if (max && internals.connections.size > max) return connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
      connection.connectionReady();
    });
  };
  internals[PROMPT] = true;
  return server;
}

/** True when `greetPromptly` was applied to `server`. */
export function greetsPromptly(server: SMTPServer): boolean {
  return (server as unknown as { [PROMPT]?: true })[PROMPT] === true;
}
