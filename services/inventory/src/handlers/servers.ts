import { toBinary, create } from '@bufbuild/protobuf';
import { BusError, implement, type Registration } from '@runnerhub/bus';
import { inventoryV1 } from '@runnerhub/contracts';
import { sealTo } from '@runnerhub/secrets';
import type { OrganizationAccess } from '@runnerhub/service-kit';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { pemRefOf, type Servers } from '../domain/servers.js';
import { validateReplyKey } from '../domain/validation.js';
import { requireCaller } from './caller.js';
import { pageOf, recordKey, toServerMessage } from './mapping.js';

export function serversHandlers(servers: Servers, access: OrganizationAccess): Registration {
  return implement(inventoryV1.Servers, {
    async create(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'operator');
      return { server: toServerMessage(await servers.create(organizationId, request)) };
    },
    async list(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      const { page, limit } = pageOf(request.page, 10);
      const { servers: found, total } = await servers.list(organizationId, { page, limit, search: request.search, activeOnly: request.activeOnly });
      return { servers: found.map(toServerMessage), pageInfo: { page, limit, total, pages: Math.ceil(total / limit) } };
    },
    async get(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'viewer');
      return { server: toServerMessage(await servers.get(organizationId, recordKey(request.server, 'server'))) };
    },
    async update(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'operator');
      const { name, hostname, port, username, authType, password, privateKey, description, status, nodeType, acceptHostKey, pemFileRef, maxSessions, clearMaxSessions } = request;
      const changes = { name, hostname, port, username, authType, password, privateKey, description, status, nodeType, tags: request.setTags ? request.tags : undefined, acceptHostKey, pemFileRef, maxSessions, clearMaxSessions };
      return { server: toServerMessage(await servers.update(organizationId, recordKey(request.server, 'server'), changes)) };
    },
    async delete(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'admin');
      await servers.delete(organizationId, recordKey(request.server, 'server'));
      return {};
    },
    // Executor-only: no end-user caller. In production NATS permissions let
    // only executor users publish to this subject (see executor.proto).
    async resolveCredentials(request) {
      if (!request.jobId) throw BusError.validation('job_id is required', 'job_id');
      validateReplyKey(request.replyPublicKey, 'reply_public_key');
      if (request.credentialId && request.credentialId !== request.serverUid) throw BusError.notFound('credential');
      const resolved = await servers.resolveCredential(request.organizationUid, request.serverUid);
      const plaintext = toBinary(inventoryV1.SealedSecretPlaintextSchema, create(inventoryV1.SealedSecretPlaintextSchema, { password: resolved.password, privateKey: resolved.privateKey }));
      return {
        host: resolved.host,
        port: resolved.port,
        username: resolved.username,
        authType: resolved.authType,
        hostKeyFingerprint: resolved.hostKeyFingerprint,
        secret: sealTo(request.replyPublicKey, plaintext, inventoryV1.credentialsAad(request.jobId, request.serverUid), inventoryV1.CREDENTIALS_SEALING_INFO),
      };
    },
    // Executor-only, like recordHostKey.
    async recordHealth(request) {
      await servers.recordHealth(request.organizationUid, request.serverUid, request.healthy, request.checkedAt ? timestampDate(request.checkedAt) : new Date());
      return {};
    },
    async uploadPemFile(request) {
      const organizationId = await access.organizationOf(requireCaller(request.caller), request.organizationRef, 'operator');
      const file = await servers.uploadPemFile(organizationId, request.filename, request.content);
      return { pemFile: { uid: file.id, filename: file.filename, size: file.size, ref: pemRefOf(file.id), uploadedAt: timestampFromDate(file.createdAt) } };
    },
    async recordHostKey(request) {
      const { fingerprint, recorded } = await servers.recordHostKey(request.organizationUid, request.serverUid, request.fingerprint);
      return { hostKeyFingerprint: fingerprint, recorded };
    },
  });
}
