export * from './gen/runnerhub/executor/v1/executor_pb.js';
