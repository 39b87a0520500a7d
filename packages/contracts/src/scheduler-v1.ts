export * from './gen/runnerhub/scheduler/v1/tasks_pb.js';
