export * from './gen/runnerhub/inventory/v1/servers_pb.js';
export * from './gen/runnerhub/inventory/v1/server_groups_pb.js';

/** HKDF info of a credential reply's SealedSecret (servers.proto says how it is sealed). */
export const CREDENTIALS_SEALING_INFO = 'runnerhub.inventory.v1.credentials';

/** The additional data a credential reply is sealed with: it opens only for the job and server it was asked for. */
export function credentialsAad(jobId: string, serverUid: string): string {
  return `${jobId}:${serverUid}`;
}
