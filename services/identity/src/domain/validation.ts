import { BusError } from '@runnerhub/bus';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const USERNAME = /^[\p{L}\p{N}._@+-]{3,64}$/u;

export function normalizeEmail(email: string): string {
  const value = email.trim().toLowerCase();
  if (!EMAIL.test(value) || value.length > 254) throw BusError.validation('email must be a valid email address', 'email');
  return value;
}

export function validateUsername(username: string): string {
  const value = username.trim();
  if (!USERNAME.test(value)) {
    throw BusError.validation('username must be 3-64 letters, digits or . _ @ + -', 'username');
  }
  return value;
}

export function validateFullName(fullName: string): string {
  const value = fullName.trim();
  if (value.length > 200) throw BusError.validation('full_name must be at most 200 characters', 'full_name');
  return value;
}
