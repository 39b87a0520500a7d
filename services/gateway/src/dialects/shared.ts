import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { create } from '@bufbuild/protobuf';
import { CallerSchema } from '@runnerhub/contracts';
import type { FastifyRequest } from 'fastify';

export function isoTime(timestamp: Timestamp | undefined): string | null {
  return timestamp ? timestampDate(timestamp).toISOString() : null;
}

/** The authenticated principal as the bus message services authorise with. */
export function callerOf(request: FastifyRequest) {
  const caller = request.caller;
  return create(CallerSchema, {
    userUid: caller?.userUid ?? '',
    organizationUid: caller?.organizationUid ?? '',
    role: caller?.role ?? '',
    clientAddress: request.ip,
    username: caller?.username ?? '',
    sessionId: caller?.sessionId ?? '',
  });
}
