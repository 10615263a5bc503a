// Types for bundle-agent-sdk.mjs, so its test can build a bundle of its own.
export interface AgentSdkBundleStats {
  readonly schemaModules: number;
  readonly keysRewritten: number;
  readonly bytes: number;
}
export const agentSdkEntry: string;
export const agentSdkBundle: string;
export function inlineConstantKeys(source: string): { contents: string; rewritten: number };
export function bundleAgentSdk(options?: { outfile?: string }): Promise<AgentSdkBundleStats>;
