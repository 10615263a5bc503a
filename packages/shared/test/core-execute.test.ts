// Goal: one executor runs a step's output for both daemons, in the one order the output type fixes
// (persist, replies, sends, effects, notifications), with one policy for a failed persist: the
// step never happened (its state is not adopted, nothing is answered, sent, started or told).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootAgent, defaultAgentSettings, defaultTimings, executeStep, PROTOCOL_VERSION, type OutputPorts, type StepOutput,
} from '../src/core/index.js';
import { Step } from '../src/core/agent/step.js';

type D = { readonly term: number };
const env = { v: PROTOCOL_VERSION, cluster: 'c1', term: 4, from: 'witness' };
const output: StepOutput<string, D> = {
  state: 'new',
  persist: { term: 4 },
  fence: { id: 2, effect: { kind: 'fence', mode: 'read-only' } },
  replies: [{ to: 'db-b', msg: { ...env, kind: 'ack', accepted: true, reason: 'ok' } }],
  sends: [{ to: 'db-a', msg: { ...env, kind: 'switchover-request', to: 'db-b' } }],
  effects: [{ id: 1, effect: { kind: 'verify-vip' } }],
  notifications: [{ event: 'switchover', detail: 'x' }],
  reason: 'r',
  routine: false,
};

function recorder(failPersist: boolean): { seen: string[]; ports: OutputPorts<D> } {
  const seen: string[] = [];
  return {
    seen,
    ports: {
      persist: (s) => {
        if (failPersist) throw new Error('disk full');
        seen.push(`persist ${s.term}`);
      },
      reply: (m) => seen.push(`reply ${m.kind}`),
      send: (to, m) => seen.push(`send ${m.kind} to ${to}`),
      effect: (id, e) => seen.push(`effect ${id} ${e.kind}`),
      notify: (event) => seen.push(`notify ${event}`),
    },
  };
}

test('persist first, then the state is adopted, then the fence, replies, sends, effects and notifications', () => {
  const { seen, ports } = recorder(false);
  executeStep(output, (s) => seen.push(`adopt ${s}`), ports);
  assert.deepEqual(seen, [
    'persist 4', 'adopt new', 'effect 2 fence', 'reply ack', 'send switchover-request to db-a', 'effect 1 verify-vip', 'notify switchover',
  ]);
});

test('a failed persist: the step never happened, and the caller gets the error', () => {
  const { seen, ports } = recorder(true);
  assert.throws(() => executeStep(output, (s) => seen.push(`adopt ${s}`), ports), /disk full/);
  assert.deepEqual(seen, [], 'nothing adopted, answered, sent, started or notified');
});

test('a step records its output in any order; the output holds it in the fixed one', () => {
  const settings = defaultAgentSettings({
    cluster: 'c1', self: 'db-a', peer: 'db-b', witness: 'witness', timings: defaultTimings,
  });
  const st = new Step(bootAgent(settings, { term: 3, primaryOfTerm: 'db-a' }, 0));
  st.notify('fenced', 'n');
  st.effect({ kind: 'verify-vip' });
  st.send('db-b', { ...env, kind: 'switchover-request', to: 'db-b' });
  st.reply('db-b', { ...env, kind: 'ack', accepted: true, reason: 'ok' });
  st.effect({ kind: 'fence', mode: 'read-only' }, 'fence');
  st.persist({ term: 4, primaryOfTerm: 'db-a' });
  const { seen, ports } = recorder(false);
  executeStep(st.output('x'), () => seen.push('adopt'), ports as unknown as OutputPorts<unknown>);
  assert.deepEqual(seen, [
    'persist 4', 'adopt', 'effect 2 fence', 'reply ack', 'send switchover-request to db-b', 'effect 1 verify-vip',
    'notify fenced',
  ]);
});

test('the rest of a persisting step runs when afterPersist says (the simulator: after the fsync, unless it crashed)', () => {
  const { seen, ports } = recorder(false);
  let rest: (() => void) | null = null;
  executeStep(output, (s) => seen.push(`adopt ${s}`), ports, { afterPersist: (r) => (rest = r) });
  assert.deepEqual(seen, ['persist 4', 'adopt new'], 'nothing else until the fsync is over');
  rest!();
  assert.equal(seen.length, 7);
  const quiet = recorder(false);
  executeStep({ ...output, persist: null }, () => {}, quiet.ports, { afterPersist: () => assert.fail('no persist, no wait') });
  assert.equal(quiet.seen.length, 5, 'a step without persist runs at once');
});
