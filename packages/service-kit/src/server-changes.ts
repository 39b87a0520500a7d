import type { Bus } from '@runnerhub/bus';

/** Where inventory announces that a server's record changed (ServerChanged, core NATS). */
export function serverChangedSubject(serverUid: string): string {
  return `events.inventory.server.${serverUid}.changed`;
}

/** Calls `changed` with the uid of every server inventory announces as changed; the subject names it, nothing to decode. */
export function onServerChanged(bus: Bus, changed: (serverUid: string) => void): void {
  bus.nc.subscribe(serverChangedSubject('*'), {
    callback: (error, msg) => {
      if (!error) changed(msg.subject.split('.')[3] ?? '');
    },
  });
}
