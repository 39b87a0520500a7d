import { BusError, createClient, type Bus } from '@runnerhub/bus';
import { inventoryV1, type Caller } from '@runnerhub/contracts';
import { LookupCache, onServerChanged } from '@runnerhub/service-kit';
import type { ServerDirectory, TargetServer } from '../domain/access.js';

/**
 * Servers are inventory's; a task records the target as it was when accepted.
 * Lookups are reused for `cacheMs` per organisation and server (the caller's
 * access to the organisation is checked before, on every call), and dropped
 * at once when inventory says the server changed.
 */
export function inventoryServers(bus: Bus, cacheMs = 0): ServerDirectory {
  const servers = createClient(bus, inventoryV1.Servers);
  const lookup = async (caller: Caller, organizationUid: string, serverUid: string): Promise<TargetServer> => {
    const { server } = await servers.get({ caller, organizationRef: organizationUid, server: { ref: { case: 'uid', value: serverUid } } });
    if (!server) throw BusError.notFound('server');
    if (server.status !== 'active') throw BusError.validation('the server is inactive', 'server_id');
    if (server.nodeType && server.nodeType !== 'Remote') throw BusError.validation('jobs run on Remote (SSH) servers only', 'server_id');
    return { uid: server.uid, name: server.name, hostname: server.hostname, port: server.port || 22, username: server.username, hostKeyFingerprint: server.hostKeyFingerprint, maxSessions: server.maxSessions };
  };
  if (cacheMs <= 0) return { serverOf: lookup };

  const known = new LookupCache<TargetServer>({ ttlMs: cacheMs });
  onServerChanged(bus, (serverUid) => known.dropGroup(serverUid));
  return {
    serverOf: (caller, organizationUid, serverUid) =>
      known.get(`${organizationUid}\0${serverUid}`, serverUid.toLowerCase(), () => lookup(caller, organizationUid, serverUid)),
  };
}
