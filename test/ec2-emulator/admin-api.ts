// The emulator's own control API (JSON under /__admin/), for tests and the lab running it as a
// separate process: inspect control plane and truth, long-poll truth changes, change faults and
// delays at runtime, read the request log, and serve IMDS processes in other namespaces.
import { z } from 'zod';
import { faultPlanSchema, type FaultInjector, type FaultPlan } from './faults.js';
import { timingUpdateSchema } from './config.js';
import type { CredentialStore } from './credentials.js';
import { deliveryOf } from './model.js';
import type { RequestLog } from './request-log.js';
import type { Ec2Store } from './store.js';

export interface AdminDeps {
  readonly store: Ec2Store;
  readonly faults: FaultInjector;
  readonly log: RequestLog;
  readonly credentials: CredentialStore | undefined;
}

export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: string;
}

export interface AdminResponse {
  readonly httpStatus: number;
  readonly json: unknown;
}

/** Longest a truth long-poll may wait, so a forgotten client cannot hold a socket forever. */
const longPollMaxMs = 60_000;

function parseBody<T>(schema: z.ZodType<T, unknown>, body: string): T | AdminResponse {
  let raw: unknown;
  try {
    raw = JSON.parse(body === '' ? '{}' : body);
  } catch (err) {
    return { httpStatus: 400, json: { error: `the body is not JSON: ${(err as Error).message}` } };
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : { httpStatus: 400, json: { error: z.prettifyError(parsed.error) } };
}

function isResponse(value: unknown): value is AdminResponse {
  return typeof value === 'object' && value !== null && 'httpStatus' in value && 'json' in value;
}

const ok = (json: unknown): AdminResponse => ({ httpStatus: 200, json });

export async function handleAdmin(deps: AdminDeps, request: AdminRequest): Promise<AdminResponse> {
  const { store, faults, log } = deps;
  const route = `${request.method} ${request.path.replace(/\/+$/, '')}`;
  // An IMDS in another process serves its instance the role credentials the emulator issued.
  const roleCredentials = /^GET \/__admin\/role-credentials\/(i-[0-9a-f]+)$/.exec(route);
  if (roleCredentials) return ok({ credentials: deps.credentials?.roleCredentials(roleCredentials[1]!) ?? null });
  switch (route) {
    case 'GET /__admin/state':
      return ok({
        timing: store.timing,
        truthVersion: store.truthVersion,
        pendingRemaps: store.pendingRemaps,
        control: store.control,
        truth: store.truth,
        describeView: store.describeView(),
      });
    case 'GET /__admin/truth': {
      const after = request.query.get('after');
      if (after === null) return ok({ version: store.truthVersion, truth: store.truth });
      const waitMs = Math.min(Number(request.query.get('waitMs') ?? 25_000), longPollMaxMs);
      if (!/^-?\d+$/.test(after) || !Number.isFinite(waitMs) || waitMs < 0) {
        return { httpStatus: 400, json: { error: 'after must be an integer version and waitMs a non-negative number' } };
      }
      return ok(await store.waitForTruthChange(Number(after), waitMs));
    }
    case 'GET /__admin/imds-view':
      return ok(store.imdsView());
    case 'GET /__admin/delivery': {
      // Where a client in each named subnet reaches `address` now (the truth): the lab and people
      // checking a three-AZ layout by hand ask this rather than re-deriving VPC routing.
      const address = request.query.get('address');
      const from = request.query.getAll('from');
      if (address === null || from.length === 0) {
        return { httpStatus: 400, json: { error: 'give address=<IPv4> and one or more from=<subnet id>' } };
      }
      const truth = store.truth;
      const deliveries = from.map((subnetId) => {
        const d = deliveryOf(truth, address, subnetId);
        return 'to' in d
          ? { from: subnetId, eniId: d.to.id, instanceId: d.to.instanceId ?? null, via: d.via }
          : { from: subnetId, dropped: d.dropped };
      });
      return ok({ version: store.truthVersion, address, deliveries });
    }
    case 'GET /__admin/faults':
      return ok(faults.status());
    case 'POST /__admin/faults': {
      // Accepts a plan ({rules, seed}) or a bare list of rules.
      const schema = request.body.trimStart().startsWith('[') ? faultPlanSchema.shape.rules.transform((rules) => ({ rules })) : faultPlanSchema;
      const plan = parseBody<FaultPlan>(schema, request.body);
      if (isResponse(plan)) return plan;
      faults.set(plan);
      return ok(faults.status());
    }
    case 'DELETE /__admin/faults':
      faults.set({ rules: [] });
      return ok(faults.status());
    case 'GET /__admin/timing':
      return ok(store.timing);
    case 'POST /__admin/timing': {
      const update = parseBody(timingUpdateSchema, request.body);
      if (isResponse(update)) return update;
      store.setTiming(update);
      return ok(store.timing);
    }
    case 'GET /__admin/requests': {
      const action = request.query.get('action');
      return ok(log.entries(action === null ? {} : { action }));
    }
    case 'DELETE /__admin/requests':
      log.clear();
      return ok({ cleared: true });
    default:
      return { httpStatus: 404, json: { error: `no admin route ${route}` } };
  }
}
