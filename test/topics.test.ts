import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  clientIdProblem,
  compileNamespace,
  namespaceProblem,
  topicFilterProblem,
  topicMatches,
  topicNameProblem,
  TopicTable,
  FilterTrie,
} from '../src/topics/index.js';
import { parsePredefinedEntry } from '../src/config/text-formats.js';

test('topic names a device may publish to', () => {
  for (const ok of ['a', 'a/b', 'sensors/temp/1', 'ab', 'é/ü', 'a$b'])
    assert.equal(topicNameProblem(ok), null, ok);
  const refused: Array<[string, string]> = [
    ['', 'empty topic name'],
    ['$SYS/x', 'topic name starts with $'],
    ['a/+', 'wildcard in topic name'],
    ['a/#', 'wildcard in topic name'],
    ['a\u0000b', 'NUL in topic name'],
    ['/a', 'empty topic level'],
    ['a/', 'empty topic level'],
    ['a//b', 'empty topic level'],
  ];
  for (const [name, problem] of refused) assert.equal(topicNameProblem(name), problem, name);
});

test('topic filters a device may subscribe to', () => {
  for (const ok of ['a/+/c', '#', 'a/#', '+', 'cmd/+']) assert.equal(topicFilterProblem(ok), null, ok);
  for (const bad of ['a/#/c', 'a+/b', 'a/b#', '$SYS/#', '', '/a'])
    assert.notEqual(topicFilterProblem(bad), null, bad);
});

test('client ids that would escape the namespace are refused', () => {
  assert.equal(clientIdProblem('sensor-7', 23), null);
  for (const bad of ['', 'a/b', 'a+', 'a#', '$x', 'tab\there'])
    assert.notEqual(clientIdProblem(bad, 23), null, bad);
  assert.match(clientIdProblem('x'.repeat(24), 23)!, /longer than 23/);
  assert.equal(clientIdProblem('x'.repeat(24), 64), null);
});

test('topic matching follows MQTT rules', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['+/+', 'a/b', true],
    ['+', '$SYS', false],
    ['#', '$SYS/x', false],
    ['a/+/c', 'a/x/c', true],
    ['a/+/c', 'a/x/d', false],
    ['a/b', 'a/b/c', false],
    ['+/b', '/b', true],
  ];
  for (const [filter, topic, expected] of cases)
    assert.equal(topicMatches(filter, topic), expected, `${filter} ~ ${topic}`);
});

test('topicMatches agrees with a regex model on random topics', () => {
  const level = fc.constantFrom('a', 'b', 'c', '');
  fc.assert(
    fc.property(
      fc.array(level, { minLength: 1, maxLength: 4 }),
      fc.array(fc.constantFrom('a', 'b', '+', '#'), { minLength: 1, maxLength: 4 }),
      (topicLevels, filterLevels) => {
        const topic = topicLevels.join('/');
        const hashAt = filterLevels.indexOf('#');
        const filter = (hashAt === -1 ? filterLevels : filterLevels.slice(0, hashAt + 1)).join('/');
        const pattern = filter
          .split('/')
          .map((l) => (l === '+' ? '[^/]*' : l === '#' ? '.*' : l))
          .join('/')
          .replace(/\/\.\*$/, '(/.*)?');
        const model = new RegExp(`^${pattern === '.*' ? '.*' : pattern}$`).test(topic);
        assert.equal(topicMatches(filter, topic), model, `${filter} ~ ${topic}`);
      },
    ),
    { numRuns: 2000 },
  );
});

test('namespace templates', () => {
  const ns = compileNamespace('mqttsn/{clientId}/', '1');
  assert.equal(ns.prefixFor('dev'), 'mqttsn/dev/');
  assert.equal(ns.root, 'mqttsn/');
  const site = compileNamespace('site/{gatewayId}/dev/{clientId}/', 'gw2');
  assert.equal(site.prefixFor('x'), 'site/gw2/dev/x/');
  assert.equal(site.root, 'site/gw2/dev/');
  assert.equal(compileNamespace('', '1').prefixFor('x'), '');
  assert.match(namespaceProblem('mqttsn/{clientId}')!, /end with/);
  assert.match(namespaceProblem('a/+/')!, /\+ or #/);
  assert.match(namespaceProblem('a/{client}/')!, /unknown placeholder/);
});

test('--predefined entries', () => {
  assert.deepEqual(parsePredefinedEntry('1=factory/alarms'), { topicId: 1, topic: 'factory/alarms' });
  assert.deepEqual(parsePredefinedEntry('sensor7:2=a=b'), { clientId: 'sensor7', topicId: 2, topic: 'a=b' });
  for (const bad of ['x=1', '0=a', '65535=a', '1=', '=a', ':1=a'])
    assert.throws(() => parsePredefinedEntry(bad), Error, bad);
});

test('topic tables are per client, bounded, and never issue reserved ids', () => {
  const table = new TopicTable(3);
  assert.equal(table.register('a'), 1);
  assert.equal(table.register('b'), 2);
  assert.equal(table.register('a'), 1);
  assert.equal(table.register('c'), 3);
  assert.equal(table.register('d'), undefined);
  assert.equal(table.nameOf(2), 'b');
  assert.equal(table.idOf('c'), 3);
  table.clear();
  assert.equal(table.size, 0);
  assert.equal(table.register('z'), 1);
});

test('the filter trie finds exactly the filters topicMatches accepts, through adds and removes', () => {
  const level = fc.constantFrom('a', 'b', '$x', '');
  const filterLevel = fc.constantFrom('a', 'b', '+', '#', '$x');
  const filterArb = fc.array(filterLevel, { minLength: 1, maxLength: 4 }).map((levels) => {
    const hashAt = levels.indexOf('#');
    return (hashAt === -1 ? levels : levels.slice(0, hashAt + 1)).join('/');
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(filterArb, { maxLength: 12 }),
      fc.array(
        fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/')),
        { minLength: 1, maxLength: 8 },
      ),
      fc.array(fc.nat(), { maxLength: 4 }),
      (filters, topics, removals) => {
        const trie = new FilterTrie();
        for (const f of filters) trie.add(f);
        const removed = new Set(
          removals
            .map((i) => filters[i % Math.max(1, filters.length)])
            .filter((f): f is string => f !== undefined),
        );
        for (const f of removed) trie.remove(f);
        const live = filters.filter((f) => !removed.has(f));
        for (const topic of topics) {
          const found: string[] = [];
          trie.match(topic, (f) => found.push(f));
          assert.deepEqual(
            found.sort(),
            live.filter((f) => topicMatches(f, topic)).sort(),
            `topic ${JSON.stringify(topic)}`,
          );
        }
      },
    ),
    { numRuns: 3000 },
  );
});
