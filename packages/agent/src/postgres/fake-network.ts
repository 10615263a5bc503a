// Where the FakePostgres nodes find each other: a primary_conninfo or rejoin endpoint resolves to a
// node here, by host:port.
import { FakePostgres } from './fake.js';
import { synchronousStandbyNamesFor, type PgEndpoint } from './port.js';

export const endpointKey = (e: PgEndpoint): string => `${e.host}:${e.port}`;

export class FakePgNetwork {
  readonly #nodes = new Map<string, FakePostgres>();

  register(node: FakePostgres): void {
    this.#nodes.set(endpointKey(node.endpoint), node);
  }

  resolve(endpoint: PgEndpoint): FakePostgres | undefined {
    return this.#nodes.get(endpointKey(endpoint));
  }

  nodes(): FakePostgres[] {
    return [...this.#nodes.values()];
  }

  /** A primary 'db-a' and a standby 'db-b' streaming from it, like test/fixtures/pg-cluster.ts. */
  static pair(options: { synchronous?: boolean; commitGuard?: boolean } = {}): {
    network: FakePgNetwork;
    primary: FakePostgres;
    standby: FakePostgres;
  } {
    const network = new FakePgNetwork();
    const guard = { commitGuard: options.commitGuard === true };
    const primary = new FakePostgres({
      network,
      nodeName: 'db-a',
      endpoint: { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' },
      ...guard,
    });
    if (options.synchronous) primary.settings.set('synchronous_standby_names', synchronousStandbyNamesFor('db-b'));
    const standby = new FakePostgres({
      network,
      nodeName: 'db-b',
      endpoint: { host: '127.0.0.2', port: 5432, user: 'postgres', database: 'postgres' },
      standbyOf: primary.endpoint,
      ...guard,
    });
    return { network, primary, standby };
  }
}
