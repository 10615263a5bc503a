// Goal: the witness's etcd calls are bounded by the cluster's requestTimeoutMs, but never below a
// second: the observer decides no failover, and under load a read held to the agents' 150 ms default
// refused an operator's switchover for nothing (lab, three nodes on etcd).
import assert from 'node:assert/strict';
import test from 'node:test';
import { defaultTimings } from '@pgvip/shared/core';
import { observerCallBoundMs } from '../src/etcd-connect.js';

test('the observer waits at least a second for etcd, longer when requestTimeoutMs is longer', () => {
  assert.ok(defaultTimings.requestTimeoutMs < 1000, 'the default peer bound is the short one');
  assert.equal(observerCallBoundMs(defaultTimings), 1000);
  assert.equal(observerCallBoundMs({ requestTimeoutMs: 2500 }), 2500);
});
