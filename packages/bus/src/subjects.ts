import type { DescMethod, DescService } from '@bufbuild/protobuf';

const SHARED_PACKAGE = 'runnerhub.common.v1';

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** A service name as a subject token: github-sync → github_sync, like its proto package. */
export function ownerToken(serviceName: string): string {
  return serviceName.replace(/-/g, '_');
}

/**
 * The subject prefix of a proto service: `runnerhub.identity.v1.Auth` is
 * served at `identity.v1.auth`. Contracts every service implements (Health)
 * live in runnerhub.common.v1 and take the serving service's name as owner.
 */
export function groupSubject(service: DescService, owner?: string): string {
  const [root, pkgOwner, version, ...rest] = service.typeName.split('.');
  if (root !== 'runnerhub' || !pkgOwner || !version || rest.length !== 1) {
    throw new Error(`${service.typeName} is not a runnerhub.<owner>.<version>.<Service> contract`);
  }
  const shared = service.file.proto.package === SHARED_PACKAGE;
  if (shared && !owner) throw new Error(`${service.typeName} is shared: name the owning service`);
  return `${shared ? owner : pkgOwner}.${version}.${snake(service.name)}`;
}

/** Endpoint token of a method: `GetMe` → `get_me` (endpoint names may not contain dots). */
export function endpointName(method: DescMethod): string {
  return snake(method.name);
}

export function methodSubject(method: DescMethod, owner?: string): string {
  return `${groupSubject(method.parent, owner)}.${endpointName(method)}`;
}
