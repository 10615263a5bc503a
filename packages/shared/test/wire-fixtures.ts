// One valid example of every protocol message, for round-trip and negative tests.
import type {
  Ack,
  AgentStatus,
  Handover,
  LeaseRelease,
  LeaseReply,
  LeaseRequest,
  ManualPromote,
  RestartRequest,
  SwitchoverRequest,
  SyncUpdate,
  SyncUpdateReply,
  VoteReply,
  VoteRequest,
} from '../src/core/messages.js';
import { MAX_LSN } from '../src/wire/lsn.js';

const envelope = { v: 1, cluster: 'prod', term: 7, from: 'db-a' } as const;

export const agentStatus: AgentStatus = {
  ...envelope,
  primaryOfTerm: 'db-a',
  role: 'primary',
  pg: {
    running: true,
    inRecovery: false,
    writable: true,
    timeline: 3,
    lsn: 0x16b374d848n,
    replayLsn: 0x16b374d848n,
    streaming: false,
    syncStandby: 'db-b',
    standbyInSync: true,
  },
  leaseRemainingMs: 2870.5,
  promotionBlocker: null,
  maintenance: false,
};

export const leaseRequest: LeaseRequest = { ...envelope, kind: 'lease-request', seq: 41, lsn: MAX_LSN, timeline: 3, syncStandby: null };
export const leaseReply: LeaseReply = { ...envelope, from: 'witness', kind: 'lease-reply', seq: 41, granted: true, reason: 'granted', primaryOfTerm: 'db-a', maintenance: true };
export const leaseRelease: LeaseRelease = { ...envelope, kind: 'lease-release', reason: 'postgres stopped accepting writes; fenced', leaseSeq: 41 };
export const voteRequest: VoteRequest = { ...envelope, from: 'db-b', term: 8, kind: 'vote-request', lastTerm: 7, lsn: 0n, timeline: 3 };
export const voteReply: VoteReply = { ...envelope, from: 'witness', term: 8, kind: 'vote-reply', granted: false, reason: 'db-a still holds a lease', primaryOfTerm: null };
export const syncUpdate: SyncUpdate = { ...envelope, kind: 'sync-update', standby: 'db-b', change: 'degrade' };
export const syncUpdateReply: SyncUpdateReply = { ...envelope, from: 'witness', kind: 'sync-update-reply', granted: true, reason: 'db-b unreachable from witness too' };
export const switchoverRequest: SwitchoverRequest = { ...envelope, from: 'witness', kind: 'switchover-request', to: 'db-b' };
export const restartRequest: RestartRequest = { ...envelope, from: 'witness', kind: 'restart-request', to: 'db-a', timeoutMs: 60_000 };
export const handover: Handover = { ...envelope, kind: 'handover', to: 'db-b', finalLsn: 0x1_00000000n, timeline: 3 };
export const manualPromote: ManualPromote = { ...envelope, from: 'witness', term: 8, kind: 'manual-promote', acceptDataLoss: true, requestedBy: 'alice via pgvip promote' };
export const ack: Ack = { ...envelope, from: 'db-b', kind: 'ack', accepted: true, reason: '' };

export const everyMessage = [
  agentStatus,
  leaseRequest,
  leaseReply,
  leaseRelease,
  voteRequest,
  voteReply,
  syncUpdate,
  syncUpdateReply,
  switchoverRequest,
  restartRequest,
  handover,
  manualPromote,
  ack,
] as const;
