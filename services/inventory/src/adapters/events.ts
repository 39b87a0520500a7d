import { publishEvent, type Bus } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { serverChangedSubject } from '@runnerhub/service-kit';
import type { ServerChanged } from '../domain/servers.js';

/** Announces changed servers on the bus, so that a service caching a server can drop its copy. */
export function serverChangedPublisher(bus: Bus): ServerChanged {
  return (organizationUid, serverUid, deleted) =>
    publishEvent(bus, serverChangedSubject(serverUid), inventoryV1.ServerChangedSchema, { organizationUid, serverUid, deleted });
}
