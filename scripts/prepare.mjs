/* global process, console, URL */
// `prepare` (npm install / npm ci in a checkout): build dist/ when TypeScript is installed. With
// `npm ci --omit=dev` it is not, and failing there ("tsc: not found") helps nobody: say what to do
// instead and succeed. Release tarballs (`npm pack`) carry dist/ already, built by `prepack`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  const built = existsSync(new URL('../dist/cli.js', import.meta.url));
  console.warn(
    built
      ? 'mqttsn-bridge: TypeScript is not installed (--omit=dev): keeping the existing dist/.'
      : 'mqttsn-bridge: TypeScript is not installed (--omit=dev), so dist/ was not built. Run ' +
          '`npm ci && npm prune --omit=dev` instead, or install a release tarball (see README "Install").',
  );
  process.exit(0);
}
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
execFileSync(process.execPath, ['-e', "require('node:fs').chmodSync('dist/cli.js', 0o755)"], {
  stdio: 'inherit',
});
