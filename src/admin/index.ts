/** The operator surface: admin page and JSON API, metrics, health and readiness. */
export { startAdminServer, type AdminServer, type AdminServerOptions } from './admin-server.js';
export { RelayMetrics, type RelayMetricsOptions, type MetricSources, type ListenerProtocol } from './metrics.js';
export { type TestReport, type TestRun, type CheckResult, type CheckedProtocol, type AccountTester } from './account-test.js';
export { type AdminStatus, type AccountView, type SpoolView } from './status-view.js';
export { type RecentDelivery } from './recent-deliveries.js';
export { readiness, probeWritable, type ReadinessReport } from './health.js';
