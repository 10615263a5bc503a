// Goal: one executor runs a step's output for both daemons, with one policy for a failed persist:
// the step never happened (its state is not adopted, nothing is answered, sent, started or told).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { executeStep, PROTOCOL_VERSION, type Action, type OutputPorts, type StepOutput } from '../src/core/index.js';

type D = { readonly term: number };
const env = { v: PROTOCOL_VERSION, cluster: 'c1', term: 4, from: 'witness' };
const actions: Action<D>[] = [
  { kind: 'persist', state: { term: 4 } },
  { kind: 'reply', to: 'db-b', msg: { ...env, kind: 'ack', accepted: true, reason: 'ok' } },
  { kind: 'effect', id: 1, effect: { kind: 'verify-vip' } },
  { kind: 'send', to: 'db-a', msg: { ...env, kind: 'switchover-request', to: 'db-b' } },
  { kind: 'notify', event: 'switchover', detail: 'x' },
];
const output = (list: Action<D>[]): StepOutput<string, D> => ({ state: 'new', actions: list, reason: 'r', routine: false });

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

test('persist first, then the state is adopted, then the actions in the order the core wrote them', () => {
  const { seen, ports } = recorder(false);
  executeStep(output(actions), (s) => seen.push(`adopt ${s}`), ports);
  assert.deepEqual(seen, [
    'persist 4', 'adopt new', 'reply ack', 'effect 1 verify-vip', 'send switchover-request to db-a', 'notify switchover',
  ]);
});

test('a failed persist: the step never happened, and the caller gets the error', () => {
  const { seen, ports } = recorder(true);
  assert.throws(() => executeStep(output(actions), (s) => seen.push(`adopt ${s}`), ports), /disk full/);
  assert.deepEqual(seen, [], 'nothing adopted, answered, sent, started or notified');
});

test('an output whose persist is not first is refused before anything runs', () => {
  const { seen, ports } = recorder(false);
  const late = [actions[1]!, actions[0]!];
  assert.throws(() => executeStep(output(late), (s) => seen.push(`adopt ${s}`), ports), /persist must come first/);
  assert.deepEqual(seen, []);
});

test('the rest of a persisting step runs when afterPersist says (the simulator: after the fsync, unless it crashed)', () => {
  const { seen, ports } = recorder(false);
  let rest: (() => void) | null = null;
  executeStep(output(actions), (s) => seen.push(`adopt ${s}`), ports, { afterPersist: (r) => (rest = r) });
  assert.deepEqual(seen, ['persist 4', 'adopt new'], 'nothing else until the fsync is over');
  rest!();
  assert.equal(seen.length, 6);
  const quiet = recorder(false);
  executeStep(output(actions.slice(1)), () => {}, quiet.ports, { afterPersist: () => assert.fail('no persist, no wait') });
  assert.equal(quiet.seen.length, 4, 'a step without persist runs at once');
});
