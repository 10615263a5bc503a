// Every anchor the lab can run, by the name `--systems` takes (bench-failover.ts) and `startLab({
// system })` accepts. One line per system; its files are under test/lab/anchors/<tool>/.
import type { AnchorSystem } from './system.js';

// One line per system, `[system.name]: system,` (its module under test/lab/anchors/<tool>/).
export const anchors: Readonly<Record<string, AnchorSystem>> = {
};

export function anchorOf(name: string): AnchorSystem | undefined {
  return Object.hasOwn(anchors, name) ? anchors[name] : undefined;
}
