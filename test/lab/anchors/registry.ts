// Every anchor the lab can run, by the name `--systems` takes (bench-failover.ts) and `startLab({
// system })` accepts. One line per system; its files are under test/lab/anchors/<tool>/.
import { patroni, patroniFast, patroniStrict } from './patroni/patroni.js';
import { pgAutoFailover, pgAutoFailoverFast } from './pg-auto-failover/pg-auto-failover.js';
import { repmgr, repmgrFastSystem } from './repmgr/repmgr.js';
import type { AnchorSystem } from './system.js';

// One line per system, `[system.name]: system,` (its module under test/lab/anchors/<tool>/).
export const anchors: Readonly<Record<string, AnchorSystem>> = {
  [patroni.name]: patroni,
  [patroniFast.name]: patroniFast,
  [patroniStrict.name]: patroniStrict,
  [pgAutoFailover.name]: pgAutoFailover,
  [pgAutoFailoverFast.name]: pgAutoFailoverFast,
  [repmgr.name]: repmgr,
  [repmgrFastSystem.name]: repmgrFastSystem,
};

export function anchorOf(name: string): AnchorSystem | undefined {
  return Object.hasOwn(anchors, name) ? anchors[name] : undefined;
}
