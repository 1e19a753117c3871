import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/load.js';

/** Shorter tokens are refused at start-up: the token is all that stands between the network and kick. */
export const MIN_TOKEN_LENGTH = 16;

export type AuthVerdict = 'ok' | 'missing' | 'malformed' | 'wrong';

/** Checks `Authorization: Bearer <token>` against the configured token in constant time. */
export class AdminAuth {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  check(header: string | undefined): AuthVerdict {
    if (header === undefined || header === '') return 'missing';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) return 'malformed';
    // Equal-length digests: timingSafeEqual needs equal lengths, and the length of the token leaks nothing.
    return timingSafeEqual(sha256(match[1]!), this.digest) ? 'ok' : 'wrong';
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The admin token from the settings: the file (preferred: a token on the command line shows in
 * `ps`) or the value. Undefined when neither is set: the admin API stays off. A problem is a
 * ConfigError: the operator must fix it (exit code 2), retrying cannot help.
 */
export async function loadAdminToken(admin: {
  token?: string;
  tokenFile?: string;
}): Promise<string | undefined> {
  let token = admin.token;
  let source = 'admin.token';
  if (admin.tokenFile !== undefined) {
    if (token !== undefined) throw new ConfigError('set admin.token or admin.tokenFile, not both');
    source = admin.tokenFile;
    try {
      // One line; the trailing newline an editor or `echo` leaves is not part of the token.
      token = (await readFile(admin.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError(
        `admin.tokenFile: cannot read ${admin.tokenFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  if (token === undefined) return undefined;
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
    throw new ConfigError(
      `${source}: the admin token must be at least ${MIN_TOKEN_LENGTH} characters without spaces ` +
        '(e.g. openssl rand -hex 32)',
    );
  return token;
}
