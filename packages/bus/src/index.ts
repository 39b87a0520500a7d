export { Bus, type BusLogger, type BusOptions } from './connection.js';
export { createClient, type CallOptions, type ServiceClient } from './client.js';
export { implement, serveService, type HandlerContext, type Implementation, type Registration, type ServiceIdentity } from './server.js';
export { BusError, ERROR_STATUS, isErrorCode, type ErrorCode } from './errors.js';
export { STREAMS, ensureStreams } from './streams.js';
export { discoverServices } from './discovery.js';
export { groupSubject, methodSubject, endpointName, ownerToken } from './subjects.js';
export { injectTraceHeaders, extractTraceContext } from './trace.js';
export { busMetrics, type BusMetrics } from './metrics.js';
