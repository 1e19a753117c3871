import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { TlsFiles } from '../uplink/options.js';

/** The broker's TLS files, read once at start; undefined when TLS needs nothing beyond the defaults. */
export async function loadTls(config: Config): Promise<TlsFiles | undefined> {
  const { ca, cert, key, rejectUnauthorized } = config.broker;
  if (!ca && !cert && !key && rejectUnauthorized) return undefined;
  const read = async (file: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (!file) return undefined;
    try {
      return await readFile(file);
    } catch (err) {
      // A configuration problem (exit code 2): retrying cannot help, so supervisors should not.
      throw new ConfigError(
        `broker.${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  };
  return {
    ca: await read(ca, 'ca'),
    cert: await read(cert, 'cert'),
    key: await read(key, 'key'),
    rejectUnauthorized,
  };
}
