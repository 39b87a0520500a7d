export * from './gen/runnerhub/identity/v1/identity_pb.js';
export * from './gen/runnerhub/identity/v1/organizations_pb.js';
export * from './gen/runnerhub/identity/v1/audit_pb.js';
export * from './gen/runnerhub/identity/v1/oauth_pb.js';
