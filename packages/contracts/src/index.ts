export * from './gen/runnerhub/common/v1/common_pb.js';
export * as identityV1 from './identity-v1.js';
export * as executorV1 from './executor-v1.js';
export * as inventoryV1 from './inventory-v1.js';
export * as schedulerV1 from './scheduler-v1.js';
