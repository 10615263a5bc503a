// Types for bundle-agent.mjs, so the tests can build bundles of their own with the agent's options.
export interface BundleStats {
  readonly schemaModules: number;
  readonly keysRewritten: number;
  readonly bytes: number;
  readonly inputs: number;
}
export const agentEntry: string;
export const agentBundle: string;
export function inlineConstantKeys(source: string): { contents: string; rewritten: number };
export function bundleForNode(options: { entry: string; outfile: string }): Promise<BundleStats>;
export function bundleAgent(): Promise<BundleStats>;
