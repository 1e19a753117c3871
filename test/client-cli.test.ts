/**
 * The pub/sub command lines: --help, usage errors (exit 1), and the commands as real processes
 * (exit codes, nothing left running: a held-open stdin or Ctrl-C).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { runPub, runSub } from '../src/client/cli.js';
import { waitUntil } from './helpers/index.js';
import { startGateway } from './support/gateway-fixture.js';

async function runInProcess(
  command: typeof runPub | typeof runSub,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await command(args, {
    stdin: Readable.from([]),
    stdout: { write: (chunk) => (stdout += chunk.toString()) },
    stderr: { write: (chunk) => (stderr += chunk.toString()) },
    signal: AbortSignal.abort(),
  });
  return { code, stdout, stderr };
}

test('--help teaches usage, examples and exit codes', async () => {
  for (const command of [runPub, runSub]) {
    const help = await runInProcess(command, ['--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stderr, '');
    for (const part of [
      'Usage:',
      'Examples:',
      '-t, --topic NAME',
      '--timeout S',
      'Exit codes:',
      '3  the gateway refused',
    ]) {
      assert.ok(help.stdout.includes(part), `${part} in:\n${help.stdout}`);
    }
  }
});

test('usage errors exit 1 with a message and a pointer to --help', async () => {
  const pubCases: Array<[string[], RegExp]> = [
    [['-m', 'x'], /give one topic/],
    [['-t', 'a/b', '-T', '5', '-m', 'x'], /give one topic/],
    [['-t', 'a/b'], /exactly one message source/],
    [['-t', 'a/b', '-m', 'x', '-l'], /exactly one message source/],
    [['-t', 'a/b', '-m', 'x', '-q', '3'], /QoS must be one of -1, 0, 1, 2, not 3/],
    [['-t', 'a/b', '-m', 'x', '-q', '-1'], /QoS -1 needs a predefined topic id/],
    [['-t', 'ab', '-m', 'x', '-q', '-1', '-e', '5'], /QoS -1 publishes without connecting/],
    [['-t', 'abc', '--short', '-m', 'x'], /"abc" is not a short topic/],
    [['-t', 'a/b', '-m', 'x', '-p', '70000'], /-p\/--port must be an integer from 1 to 65535/],
    [['-t', 'a/b', '-m', 'x', '-T', '0'], /-T\/--topic-id must be an integer from 1 to 65534/],
    [['-t', 'a/b', '-m', 'x', '--timeout', 'soon'], /--timeout must be a number of seconds/],
    [['-t', 'a/b', '-m', 'x', '--will-message', 'bye'], /need --will-topic/],
    [['-t', 'a/b', '-m', 'x', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['-t', 'a/b', '-m', 'x', 'stray'], /Unexpected argument 'stray'/],
  ];
  for (const [args, message] of pubCases) {
    const result = await runInProcess(runPub, args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.stderr, message, args.join(' '));
    assert.match(result.stderr, /Try 'mqttsn-bridge pub --help'/);
  }
  const subCases: Array<[string[], RegExp]> = [
    [[], /give at least one topic/],
    [['-t', 'a', '-q', '-1'], /QoS must be one of 0, 1, 2, not -1/],
    [['-t', 'a', '--wake-interval', '5'], /--wake-interval needs -e/],
    [['-t', 'a', '-e', '5', '--wake-interval', '6'], /must not exceed the sleep duration/],
    [['-t', 'a', '-C', '0'], /-C\/--count must be an integer from 1/],
  ];
  for (const [args, message] of subCases) {
    const result = await runInProcess(runSub, args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.stderr, message, args.join(' '));
  }
});

/** The commands as a process, wired like src/cli.ts: the exit code goes to process.exitCode. */
function spawnCommand(command: 'runPub' | 'runSub', args: string[]) {
  const entry = `import { ${command} } from './src/client/cli.ts'; process.exitCode = await ${command}(process.argv.slice(1));`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', entry, '--', ...args],
    {
      cwd: new URL('..', import.meta.url),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

test('a pub process ends by itself on a refusal, although its stdin is still open', async (t) => {
  const fx = await startGateway(t, { outbox: { maxMessages: 1 } });
  const pub = spawnCommand('runPub', ['-p', String(fx.port), '-q', '1', '-t', 'temp', '-l']);
  t.after(() => pub.child.kill('SIGKILL'));
  pub.child.stdin.write('fits\ndoes not fit\n'); // and never closed
  assert.equal(await pub.exited, 3, pub.output());
  assert.match(pub.output(), /congestion/);
});

test('a sub process disconnects cleanly and exits 0 on SIGINT', async (t) => {
  const fx = await startGateway(t);
  // The gateway does not answer SUBSCRIBE (yet): the client is connected and retrying it.
  const sub = spawnCommand('runSub', [
    '-p',
    String(fx.port),
    '-i',
    'listener',
    '-t',
    'cmd',
    '--timeout',
    '10',
  ]);
  t.after(() => sub.child.kill('SIGKILL'));
  await waitUntil(() => fx.gateway.sessions.byClientId('listener')?.state === 'active', {
    timeoutMs: 15_000,
    description: 'the sub process to connect',
  });
  sub.child.kill('SIGINT');
  assert.equal(await sub.exited, 0, sub.output());
  assert.equal(fx.gateway.sessions.byClientId('listener'), undefined, 'clean session ended');
});
