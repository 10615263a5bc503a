// The EC2 + IMDSv2 emulator's programmatic API, for tests and the network-namespace lab:
//   const ec2 = await startEc2Emulator(config);   // EC2 Query API on ec2.url
//   const imds = await startImds({ instanceId: 'i-0aaa', source: ec2 });
//   ec2.onTruthChange(({ truth }) => programRouter(truth));
//   ...; await imds.close(); await ec2.close();
import { loadEmulatorConfigFile, initialSnapshot, resolveEmulatorConfig, timingUpdateSchema, type Ec2EmulatorConfig, type ResolvedEmulatorConfig } from './config.js';
import { CredentialStore, type RoleCredentials } from './credentials.js';
import { FaultInjector, faultPlanSchema, type FaultPlan, type FaultRule, type FaultRuleStatus } from './faults.js';
import { closeServer, createEmulatorServer, listen } from './http-server.js';
import type { Ec2Snapshot } from './model.js';
import { RequestLog, type LoggedRequest } from './request-log.js';
import { Ec2Store, type Clock, type Timing, type TruthChange } from './store.js';

export { EmulatorConfigError, emulatorConfigSchema, loadEmulatorConfigFile, resolveEmulatorConfig } from './config.js';
export type { Ec2EmulatorConfig, ResolvedEmulatorConfig } from './config.js';
export type { RoleCredentials } from './credentials.js';
export { decodeAuthorizationFailure } from './iam.js';
export type { IamPolicyInput } from './iam.js';
export { remoteImdsSource, startImds } from './imds.js';
export type { ImdsOptions, ImdsServer, ImdsViewSource } from './imds.js';
export { deliveryOf, holderOfAddress, interfacesOfInstance, privateAddressesOf, routeState, routeTableOfSubnet } from './model.js';
export type { Delivery, Ec2Snapshot, NetworkInterface, Route, RouteTable, Subnet, Vpc } from './model.js';
export type { FaultKind, FaultPlan, FaultRule } from './faults.js';
export type { LoggedRequest } from './request-log.js';
export type { Timing, TruthChange } from './store.js';

export interface Ec2Emulator {
  /** Base URL of the EC2 Query API, e.g. `http://127.0.0.1:41234` (use it as the SDK's endpoint). */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  /** The state store: control plane, truth and the lagging views. */
  readonly state: Ec2Store;
  /** The data plane now: which ENI holds which address, where each route points. */
  truth(): Ec2Snapshot;
  /** Subscribes to data-plane changes (the lab programs its router from these); returns unsubscribe. */
  onTruthChange(listener: (change: TruthChange) => void): () => void;
  /** What IMDS serves now (the truth as of `imdsLagMs` ago); makes the emulator an IMDS source. */
  imdsView(): Ec2Snapshot;
  /**
   * The temporary credentials of `instanceId`'s role that IMDS hands out now (issued or rotated on
   * demand); undefined without a role.
   */
  roleCredentials(instanceId: string): RoleCredentials | undefined;
  /** Replaces the fault rules (counters and RNG restart). */
  setFaults(faults: FaultPlan | readonly FaultRule[]): void;
  faults(): { seed: number; rules: FaultRuleStatus[] };
  setTiming(timing: Partial<Timing>): void;
  /** The API calls answered so far (optionally of one action). */
  requests(filter?: { action?: string }): LoggedRequest[];
  /** Stops the server (cutting hung requests) and the remap timer. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Directory that relative `policyFile` paths are resolved against (default: the working directory). */
  readonly baseDir?: string;
  readonly clock?: Clock;
  /** The emulator's wall clock (ms): request dates and credential expirations are judged by it; default Date.now. */
  readonly wallClock?: () => number;
}

/** Starts an emulator from an already validated config (see loadEmulatorConfigFile). */
export async function startResolvedEc2Emulator(
  config: ResolvedEmulatorConfig,
  options: { clock?: Clock; wallClock?: () => number } = {},
): Promise<Ec2Emulator> {
  const store = new Ec2Store(initialSnapshot(config), config.timing, options.clock);
  const faults = new FaultInjector(config.faults);
  const log = new RequestLog();
  const now = options.wallClock ?? Date.now;
  const credentials = config.iam && new CredentialStore(config.iam, config.accountId, now);
  const server = createEmulatorServer({ store, faults, credentials, log, now });
  let port: number;
  try {
    port = await listen(server, config.host, config.port);
  } catch (err) {
    store.close();
    throw err;
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    region: config.region,
    state: store,
    truth: () => store.truth,
    onTruthChange: (listener) => store.onTruthChange(listener),
    imdsView: () => store.imdsView(),
    roleCredentials: (instanceId) => credentials?.roleCredentials(instanceId),
    // Validated like the admin API's input: a typo'd probability must not silently mean "always".
    setFaults: (plan) => faults.set(faultPlanSchema.parse(Array.isArray(plan) ? { rules: plan } : plan)),
    faults: () => faults.status(),
    setTiming: (timing) => store.setTiming(timingUpdateSchema.parse(timing)),
    requests: (filter) => log.entries(filter),
    close: () => {
      closing ??= (async () => {
        // Server first: a request arriving while closing must not find the store already closed.
        await closeServer(server);
        store.close();
      })();
      return closing;
    },
  };
}

/** Validates `config` (throws EmulatorConfigError with every problem listed) and starts the emulator. */
export async function startEc2Emulator(config: Ec2EmulatorConfig, options: StartOptions = {}): Promise<Ec2Emulator> {
  return startResolvedEc2Emulator(resolveEmulatorConfig(config, options.baseDir), options);
}

/** Loads a JSON or YAML config file and starts the emulator; `overrides` win over the file (e.g. the port). */
export async function startEc2EmulatorFromFile(
  file: string,
  overrides: { host?: string; port?: number } = {},
): Promise<Ec2Emulator> {
  return startResolvedEc2Emulator({ ...loadEmulatorConfigFile(file), ...overrides });
}
