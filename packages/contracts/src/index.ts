export * from './gen/runnerhub/common/v1/common_pb.js';
export * as identityV1 from './gen/runnerhub/identity/v1/identity_pb.js';
