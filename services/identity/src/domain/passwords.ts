import { hash, verify } from '@node-rs/argon2';

// @node-rs/argon2 exports Algorithm as a const enum; 2 is Argon2id.
const ARGON2ID = 2;
import { BusError } from '@runnerhub/bus';

export interface Argon2Cost {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export class PasswordHasher {
  private readonly dummyHash: Promise<string>;

  constructor(
    private readonly cost: Argon2Cost,
    private readonly minLength: number,
  ) {
    // Verified against when the user does not exist, so that an unknown user
    // and a wrong password take about the same time.
    this.dummyHash = this.hash('not-a-real-password-0000');
  }

  validate(password: string): void {
    if (password.length < this.minLength) {
      throw BusError.validation(`password must be at least ${this.minLength} characters`, 'password');
    }
    if (password.length > 1024) throw BusError.validation('password must be at most 1024 characters', 'password');
  }

  hash(password: string): Promise<string> {
    return hash(password, { algorithm: ARGON2ID, ...this.cost });
  }

  async verify(passwordHash: string | null | undefined, password: string): Promise<boolean> {
    if (!passwordHash) {
      await verify(await this.dummyHash, password).catch(() => false);
      return false;
    }
    return verify(passwordHash, password).catch(() => false);
  }
}
