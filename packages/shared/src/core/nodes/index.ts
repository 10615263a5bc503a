// N database nodes on etcd: quorum-commit arithmetic and candidate ranking (docs/design.md, "More
// than one standby"). Pure, tested, and not wired into stepAgent yet.
export * from './candidates.js';
export * from './quorum-commit.js';
