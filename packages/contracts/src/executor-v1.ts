export * from './gen/runnerhub/executor/v1/executor_pb.js';
export * from './gen/runnerhub/executor/v1/connectivity_pb.js';
