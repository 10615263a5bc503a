// Goal: the fence's pg_hba.conf block goes on top of the operator's rules and comes off again
// without changing a byte of them, and names every role in a form pg_hba.conf reads literally.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasHbaFence, hbaFenceBlock, hbaRoleToken, withHbaFence } from '../src/postgres/hba-fence.js';

const operatorRules = `# TYPE  DATABASE  USER  ADDRESS  METHOD
local  all          all                  peer
host   all          pgvip  10.0.1.11/32  scram-sha-256
host   replication  pgvip  10.0.1.12/32  scram-sha-256
`;

test('Given the operator\'s rules, When the block is added, replaced and removed, Then it is first while present and the rules are unchanged after', () => {
  const fenced = withHbaFence(operatorRules, hbaFenceBlock(['app', 'reporting']));
  assert.ok(fenced.startsWith('# BEGIN pgvip fence'));
  assert.ok(fenced.endsWith(operatorRules));
  assert.match(fenced, /^local all "app","reporting" reject$/m);
  assert.match(fenced, /^host all "app","reporting" all reject$/m);
  assert.ok(hasHbaFence(fenced));

  const refenced = withHbaFence(fenced, hbaFenceBlock(['app']));
  assert.equal(refenced.match(/# BEGIN pgvip fence/g)?.length, 1, 'one block, replaced in place');
  assert.doesNotMatch(refenced, /reporting/);

  assert.equal(withHbaFence(refenced, null), operatorRules);
  assert.equal(withHbaFence(operatorRules, null), operatorRules, 'removing an absent block changes nothing');
  assert.equal(hasHbaFence(operatorRules), false);
});

test('Given no role but the agent\'s, Then the block has no rule (it only marks the fence), and many roles are spread over lines', () => {
  assert.doesNotMatch(hbaFenceBlock([]), /reject/);
  const many = hbaFenceBlock(Array.from({ length: 120 }, (_, i) => `r${i}`));
  assert.equal(many.match(/^host all .* all reject$/gm)?.length, 3);
  assert.equal(many.match(/^local all .* reject$/gm)?.length, 3);
});

test('Given role names with keywords, prefixes, commas and spaces, Then they are quoted; a name pg_hba.conf cannot hold is left out', () => {
  assert.equal(hbaRoleToken('all'), '"all"');
  assert.equal(hbaRoleToken('+admins'), '"+admins"');
  assert.equal(hbaRoleToken('odd, name # x'), '"odd, name # x"');
  assert.equal(hbaRoleToken('say "hi"'), null);
  assert.equal(hbaRoleToken('two\nlines'), null);
  assert.doesNotMatch(hbaFenceBlock(['say "hi"', 'ok']), /say/);
});

test('Given a begin marker without its end, Then the file is not touched and the error says what to fix', () => {
  const damaged = `# BEGIN pgvip fence: ...\nhost all "app" all reject\n${operatorRules}`;
  assert.throws(() => withHbaFence(damaged, null), /without "# END pgvip fence": remove the damaged block by hand/);
});
