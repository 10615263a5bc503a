export * from './actions.js';
export * from './agent.js';
export * from './eligibility.js';
export * from './execute.js';
export * from './grantor.js';
export * from './invariants.js';
export * from './messages.js';
// N database nodes (docs/design.md, "More than one standby"); quorum-commit's SyncState is the
// plan's pair of claims, exported as SyncClaimPair beside the agent's own SyncState.
export {
  NO_CLAIM, bestSwitchoverTarget, candidateBlocker, claimImplies, claimProblem, compareCandidates, electionDecision,
  membersToHear, normalClaim, promotionSafety, rankCandidates, sameClaim, synchronousStandbyNames, syncPlan,
  wantedClaim,
  type CandidatePosition, type ElectionDecision, type FinalPosition, type LiveStandby, type NodeTraits,
  type PromotionSafety, type Ranked, type RankingRules, type SyncClaim, type SyncState as SyncClaimPair, type SyncStep,
} from './nodes/index.js';
export { ETCD_QUORUM_ID, quorumName, quorumOf, type Quorum } from './quorum.js';
export * from './terms.js';
export * from './timings.js';
export * from './witness.js';
