export * from './gen/runnerhub/inventory/v1/servers_pb.js';
export * from './gen/runnerhub/inventory/v1/server_groups_pb.js';
