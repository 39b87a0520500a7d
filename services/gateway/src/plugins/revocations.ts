import { createClient, subscribeEvents, type Bus } from '@runnerhub/bus';
import { identityV1 } from '@runnerhub/contracts';
import { timestampDate } from '@bufbuild/protobuf/wkt';


/**
 * Sessions that were logged out or revoked, checked on every authenticated
 * request without a round trip: identity announces each revocation as an
 * event, and the full list is reloaded periodically (and at start) so a
 * gateway that missed events while disconnected catches up.
 */
export class RevokedSessions {
  private readonly until = new Map<string, number>();
  private subscription?: ReturnType<typeof subscribeEvents>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly bus: Bus,
    private readonly accessTtlMs: number,
  ) {}

  async start(reloadIntervalMs: number): Promise<void> {
    this.subscription = subscribeEvents(this.bus, 'events.identity.session.*.revoked', identityV1.SessionRevokedSchema, (event) =>
      this.add(event.sessionId, event.revokedUntil ? timestampDate(event.revokedUntil).getTime() : Date.now() + this.accessTtlMs),
    );
    await this.reload();
    this.timer = setInterval(() => void this.reload(), reloadIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.subscription?.unsubscribe();
  }

  add(sessionId: string, untilMs = Date.now() + this.accessTtlMs): void {
    this.until.set(sessionId, untilMs);
  }

  isRevoked(sessionId: string): boolean {
    const until = this.until.get(sessionId);
    if (until === undefined) return false;
    if (until < Date.now()) {
      this.until.delete(sessionId);
      return false;
    }
    return true;
  }

  private async reload(): Promise<void> {
    try {
      const { sessionIds } = await createClient(this.bus, identityV1.Auth).listRevokedSessions({});
      for (const sessionId of sessionIds) if (!this.until.has(sessionId)) this.add(sessionId);
      for (const [sessionId, until] of this.until) if (until < Date.now()) this.until.delete(sessionId);
    } catch (error) {
      this.bus.logger.warn({ err: error }, 'could not load revoked sessions; relying on events');
    }
  }
}
