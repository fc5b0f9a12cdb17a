/** Delivery of spooled mail to Exchange Online (nodemailer, STARTTLS, XOAUTH2), paced per mailbox. */
export { DeliveryWorker, type DeliveryWorkerOptions, type DeliveryEvents } from './delivery-worker.js';
export { type DeliveryEvent, type DeliveryEventName } from './record-outcome.js';
export { type UpstreamTarget } from './upstream-sender.js';
export { permanentFailureCode, isTokenRejection, replyClass, replyCode } from './exchange-replies.js';
export { retryDelayMs } from './retry-schedule.js';
