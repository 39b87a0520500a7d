/** What each organisation role may do (RunnerHub's permissions list). */
export const ROLE_PERMISSIONS = {
  admin: ['read', 'write', 'admin'],
  operator: ['read', 'write'],
  viewer: ['read'],
} as const satisfies Record<string, readonly string[]>;

export type RoleName = keyof typeof ROLE_PERMISSIONS;

export function permissionsOf(role: string): string[] {
  return [...(ROLE_PERMISSIONS[role as RoleName] ?? [])];
}
