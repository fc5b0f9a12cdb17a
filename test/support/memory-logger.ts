/** A logger at the most verbose level whose lines stay in memory, so tests can assert what was (not) logged. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export function memoryLogger(): { logger: Logger; text(): string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level: 'trace', destination: sink as unknown as Parameters<typeof createLogger>[0]['destination'] });
  return { logger, text: () => lines.join('') };
}
