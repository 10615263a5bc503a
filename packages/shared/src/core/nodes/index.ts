// N database nodes on etcd: quorum-commit arithmetic and candidate ranking (docs/design.md, "More
// than one standby"). Pure and property-tested; the agent core and etcd's bridge use them.
export * from './candidates.js';
export * from './quorum-commit.js';
