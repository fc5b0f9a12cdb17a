/**
 * The process-wide last line: a rejection nobody handled or an exception nobody caught. Every callback the relay
 * hands to a library or the runtime catches its own errors (and the typed lint forbids floating promises), so
 * reaching this is a bug; still, one connection, account or file must never end the daemon. After start-up such a
 * fault is logged with the catalogue code UNHANDLED_FAULT, counted (`xoauth2_relay_internal_faults_total`) and the
 * daemon keeps serving. During start-up nothing serves yet, so a fault there ends the process (exit 70), which
 * systemd and the operator see at once.
 */
import { errorFields, type Logger } from './log.js';

let faults = 0;

/** How many faults no handler caught since the process started. */
export function faultCount(): number {
  return faults;
}

export interface FaultPolicy {
  /** Start-up is over: from now on a fault is logged and counted, not fatal. */
  serving(): void;
  /** Removes the handlers (the CLI's other commands do not install them). */
  remove(): void;
}

export function installFaultPolicy(log: Logger, onFatal: (code: number) => void): FaultPolicy {
  let serving = false;
  const handle = (err: unknown, origin: string) => {
    faults += 1;
    if (!serving) {
      log.fatal({ ...errorFields(err), origin, code: 'UNHANDLED_FAULT' }, 'fault during start-up: stopping');
      log.flush();
      onFatal(70);
      return;
    }
    log.error({ ...errorFields(err), origin, code: 'UNHANDLED_FAULT' }, 'a fault no handler caught (a bug, please report this line): logged and counted, the relay keeps serving');
  };
  const onRejection = (reason: unknown) => handle(reason, 'unhandledRejection');
  const onException = (err: Error) => handle(err, 'uncaughtException');
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    serving: () => {
      serving = true;
    },
    remove: () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}
