/** The durable message spool: commit on receipt, then queue, dead letters and recovery. */
export { Spool, type SpoolOptions, type DeadLetterVerdict } from './spool.js';
export { type SpooledEnvelope, type NewEnvelope, type DeliveryState, type MessageStatus, type MessageEvent, type StatusTarget, statusTransitions, nextStatus, isDeliverable } from './envelope.js';
export { newMessageId, isMessageId } from './message-id.js';
export { type RecoveryReport } from './spool-recovery.js';
export { type SpoolFolder } from './spool-layout.js';
