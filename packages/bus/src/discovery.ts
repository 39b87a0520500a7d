import { Svcm, type ServiceInfo } from '@nats-io/services';
import type { Bus } from './connection.js';

/**
 * Every service instance answering $SRV.INFO within the wait: the gateway's
 * only source of which services exist.
 */
export async function discoverServices(bus: Bus, waitMs = 500): Promise<ServiceInfo[]> {
  const client = new Svcm(bus.nc).client({ strategy: 'timer', maxWait: waitMs });
  const found: ServiceInfo[] = [];
  for await (const info of await client.info()) found.push(info);
  return found;
}
