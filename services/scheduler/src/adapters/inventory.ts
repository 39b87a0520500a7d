import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1, type Caller } from '@runnerhub/contracts';
import type { ServerDirectory, TargetServer } from '../domain/access.js';

/** Servers are inventory's; a task records the target as it was when accepted. */
export function inventoryServers(bus: Bus): ServerDirectory {
  const servers = createClient(bus, inventoryV1.Servers);
  return {
    async serverOf(caller: Caller, organizationUid: string, serverUid: string): Promise<TargetServer> {
      const { server } = await servers.get({ caller, organizationRef: organizationUid, server: { ref: { case: 'uid', value: serverUid } } });
      if (!server) throw BusError.notFound('server');
      if (server.status !== 'active') throw BusError.validation('the server is inactive', 'server_id');
      if (server.nodeType && server.nodeType !== 'Remote') throw BusError.validation('jobs run on Remote (SSH) servers only', 'server_id');
      return { uid: server.uid, name: server.name, hostname: server.hostname, port: server.port || 22, username: server.username, hostKeyFingerprint: server.hostKeyFingerprint };
    },
  };
}
