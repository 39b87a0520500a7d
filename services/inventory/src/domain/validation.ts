import { BusError } from '@runnerhub/bus';

export const STATUSES = ['active', 'inactive'] as const;
export const NODE_TYPES = ['Remote', 'Socket'] as const;
export type ServerStatus = (typeof STATUSES)[number];
export type NodeType = (typeof NODE_TYPES)[number];

const HOSTNAME = /^[A-Za-z0-9._:[\]-]{1,253}$/;
const USERNAME = /^[^\s:]{1,64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function validateName(name: string): string {
  const value = name.trim();
  if (!value || value.length > 200) throw BusError.validation('name must be 1-200 characters', 'name');
  return value;
}

export function validateDescription(description: string): string {
  if (description.length > 2000) throw BusError.validation('description must be at most 2000 characters', 'description');
  return description;
}

/** Empty is allowed here: only a Remote node needs an address (a Socket node connects itself). */
export function validateHostname(hostname: string): string {
  const value = hostname.trim();
  if (value && !HOSTNAME.test(value)) throw BusError.validation('hostname must be a host name or an IP address', 'hostname');
  return value;
}

export function validatePort(port: number): number {
  const value = port || 22;
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw BusError.validation('port must be 1-65535', 'port');
  return value;
}

/** sshd's MaxSessions is per connection; beyond 1000 a value is a typo, not a server. */
export const MAX_SESSIONS_LIMIT = 1000;

export function validateMaxSessions(maxSessions: number): number {
  if (!Number.isInteger(maxSessions) || maxSessions < 1 || maxSessions > MAX_SESSIONS_LIMIT) {
    throw BusError.validation(`max_sessions must be an integer from 1 to ${MAX_SESSIONS_LIMIT}`, 'max_sessions');
  }
  return maxSessions;
}

export function validateUsername(username: string): string {
  const value = username.trim();
  if (value && !USERNAME.test(value)) throw BusError.validation('username must be 1-64 characters without spaces or colons', 'username');
  return value;
}

export function validateTags(tags: readonly string[]): string[] {
  const values = [...new Set(tags.map((tag) => tag.trim()))];
  if (values.length > 50 || values.some((tag) => !tag || tag.length > 64)) throw BusError.validation('tags must be at most 50 values of 1-64 characters', 'tags');
  return values;
}

export function validateStatus(status: string): ServerStatus {
  const value = status || 'active';
  if (!(STATUSES as readonly string[]).includes(value)) throw BusError.validation(`status must be one of ${STATUSES.join(', ')}`, 'status');
  return value as ServerStatus;
}

export function validateNodeType(nodeType: string): NodeType {
  const value = nodeType || 'Remote';
  if (!(NODE_TYPES as readonly string[]).includes(value)) throw BusError.validation(`type must be one of ${NODE_TYPES.join(', ')}`, 'type');
  return value as NodeType;
}

/** A requester's reply key for sealed credentials: a raw X25519 public key, which any 32 bytes are (sealTo parses it). */
export function validateReplyKey(raw: Uint8Array, field: string): void {
  if (raw.length !== 32) throw BusError.validation(`${field} must be a raw 32-byte X25519 public key`, field);
}
