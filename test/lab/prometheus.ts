// A real Prometheus server (Debian's /usr/bin/prometheus) on the lab's client host, as an operator
// runs one: it scrapes the agents and the witness with the scrape jobs of deploy/prometheus/prometheus.yml
// and evaluates deploy/prometheus/pgvip-rules.yml. It runs as the `prometheus` user (when the Debian
// package made it) with its config, token copy and data directory under the lab directory, listens on
// the client's address, and is asked through the VPC like the other lab servers.
import { chownSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { osUser } from './exec.js';
import { repoRoot } from './ipc.js';
import type { Lab } from './lab.js';
import { Service } from './supervisor.js';
import { dbNodes } from './topology.js';

export const prometheusBinary = '/usr/bin/prometheus';
const port = 9090;

export interface PromAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: 'pending' | 'firing' | 'inactive';
  readonly activeAt: string;
  readonly value: string;
}

export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

export class LabPrometheus {
  readonly service: Service;
  readonly url: string;
  readonly #lab: Lab;

  private constructor(lab: Lab, service: Service, url: string) {
    this.#lab = lab;
    this.service = service;
    this.url = url;
  }

  /** Writes the config and starts the server; `intervalS` is both scrape and rule-evaluation interval. */
  static start(lab: Lab, intervalS = 1): LabPrometheus {
    const t = lab.topology;
    if (lab.configs === null) throw new Error('Prometheus needs the pgvip daemons (system "pgvip")');
    const dir = path.join(lab.dir, 'prometheus');
    mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o755 });
    const rules = path.join(dir, 'pgvip-rules.yml');
    copyFileSync(path.join(repoRoot, 'deploy/prometheus/pgvip-rules.yml'), rules);
    const token = path.join(dir, 'operator.token');
    writeFileSync(token, `${lab.configs.operatorToken}\n`, { mode: 0o600 });
    // The lab's CA and client certificate, readable by Prometheus' user.
    const tls = lab.configs.tls;
    const tlsFiles = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'lab.crt'), key: path.join(dir, 'lab.key') };
    writeFileSync(tlsFiles.ca, tls.ca);
    writeFileSync(tlsFiles.cert, tls.cert);
    writeFileSync(tlsFiles.key, tls.key, { mode: 0o600 });
    const config = path.join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      stringify({
        global: { scrape_interval: `${intervalS}s`, scrape_timeout: `${intervalS}s`, evaluation_interval: `${intervalS}s` },
        rule_files: [rules],
        scrape_configs: [
          {
            job_name: 'pgvip-agent',
            // With the lab's tls option the agents serve HTTPS and want a client certificate (mutual TLS).
            ...(tls.peer ? { scheme: 'https', tls_config: { ca_file: tlsFiles.ca, cert_file: tlsFiles.cert, key_file: tlsFiles.key } } : {}),
            static_configs: [{ targets: dbNodes.map((n) => `${t.hosts[n].address}:${t.ports.agent}`) }],
          },
          {
            job_name: 'pgvip-witness',
            // The operator API serves HTTPS (beyond loopback pgvip requires it).
            scheme: 'https',
            tls_config: { ca_file: tlsFiles.ca },
            authorization: { credentials_file: token },
            static_configs: [{ targets: [`${t.hosts.witness.address}:${t.ports.operator}`] }],
          },
        ],
      }),
    );
    // Its own user, as the Debian service runs it; root only if the package did not make one.
    const user = hasUser('prometheus') ? 'prometheus' : 'root';
    if (user !== 'root') {
      const u = osUser(user);
      for (const f of [dir, path.join(dir, 'data'), rules, token, config, ...Object.values(tlsFiles)]) chownSync(f, u.uid, u.gid);
    }
    const address = `${t.hosts.client.address}:${port}`;
    const service = new Service({
      reaper: lab.reaper,
      name: 'prometheus',
      host: 'client',
      argv: [prometheusBinary, `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=${address}`, '--log.level=warn'],
      run: { user },
      logFile: path.join(lab.dir, 'logs', 'prometheus.log'),
      cwd: dir,
    });
    service.start();
    return new LabPrometheus(lab, service, `http://${address}`);
  }

  async #api<T>(apiPath: string): Promise<T> {
    const r = await this.#lab.emulator.http(`${this.url}${apiPath}`, { timeoutMs: 3_000 });
    if (r.status !== 200) throw new Error(`Prometheus ${apiPath}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    return (JSON.parse(r.body) as { data: T }).data;
  }

  /** Active alerts (pending and firing), from /api/v1/alerts. */
  async alerts(): Promise<PromAlert[]> {
    return (await this.#api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
  }

  /** An instant query. */
  async query(promql: string): Promise<PromSample[]> {
    return (await this.#api<{ result: PromSample[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result;
  }

  stop(): Promise<void> {
    return this.service.stop();
  }
}

function hasUser(name: string): boolean {
  try {
    osUser(name);
    return true;
  } catch {
    return false;
  }
}
