// Types for bundle-agent.mjs, so the tests can build bundles of their own with the agent's options.
export interface BundleStats {
  readonly schemaModules: number;
  readonly keysRewritten: number;
  readonly bytes: number;
  readonly inputs: number;
  /** Non-ASCII characters (in kept comments) written as escapes: see asciiSource. */
  readonly nonAsciiEscaped: number;
  /** Packages bundled through a slim entry (slimEntries). */
  readonly slimPackages: number;
  /** Node built-ins taken from process.getBuiltinModule, and those of them loaded lazily (lazyBuiltins). */
  readonly builtins: number;
  readonly lazyBuiltins: number;
  /** Chunk files of dynamic imports (chunks/ beside the entry's file), and their bytes. */
  readonly chunks: number;
  readonly chunkBytes: number;
}
export const agentEntry: string;
/** Packages the bundle leaves to node_modules, which the release must ship. */
export const externalPackages: readonly string[];
/** The directory beside the entry's file that holds its chunks. */
export const chunkDir: string;
/** The entry's file and its chunks' files. */
export function bundleFiles(outfile: string): string[];
/** What a left-out fastify schema compiler throws when a route asks for it. */
export const schemaCompilerMissing: string;
export const slimEntries: Readonly<Record<string, string>>;
export const lazyBuiltins: Readonly<
  Record<string, {
    readonly data: readonly string[];
    readonly functions: readonly string[];
    readonly known: Readonly<Record<string, unknown>>;
  }>
>;
/** The stand-in module (CommonJS source) for the lazy built-in `name`. */
export function lazyBuiltinModule(name: string): string;
export const agentBundle: string;
export function inlineConstantKeys(source: string): { contents: string; rewritten: number };
export function asciiSource(source: string): { code: string; escaped: number };
export function bundleForNode(options: { entry: string; outfile: string }): Promise<BundleStats>;
export function bundleAgent(): Promise<BundleStats>;
