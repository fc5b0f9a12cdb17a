/**
 * Spool message ids: `<milliseconds, base36, 9 digits>-<10 random hex digits>`. Sorting ids as strings sorts
 * messages by arrival (the worker delivers oldest first, `queue list` reads in order); the random part keeps
 * ids unique across processes and within one millisecond. Ids become file names, so anything that is not
 * exactly this shape (say `../x` typed at the queue CLI) is refused before it reaches a path.
 */
import { randomBytes } from 'node:crypto';

const ID_SHAPE = /^[0-9a-z]{9}-[0-9a-f]{10}$/;

/** A new id for a message received at `nowMs`. */
export function newMessageId(nowMs: number = Date.now()): string {
  return `${Math.floor(nowMs).toString(36).padStart(9, '0')}-${randomBytes(5).toString('hex')}`;
}

/** True when `id` has the shape `newMessageId` makes (and is therefore safe in a path). */
export function isMessageId(id: string): boolean {
  return ID_SHAPE.test(id);
}
