// StopInstances: what `pgvip failover --stop-old-primary` calls to stop the old primary's instance
// (Force, as after a hang: no clean OS shutdown). The emulator keeps an instance's state only; the
// stop completes at once (describe would show "stopped"), while the answer says "stopping", as EC2's
// does for a running instance.
import { idPatterns } from './config.js';
import { Ec2ApiError } from './errors.js';
import { findInstance, instanceStateCodes, withInstanceState, type Ec2Snapshot, type InstanceStateName } from './model.js';
import { checkIdFormat, type Ec2Operation } from './operation.js';
import type { QueryParams } from './query-params.js';
import { el, set, type XmlElement } from './xml.js';

function instanceIds(params: QueryParams): string[] {
  const ids = params.list('InstanceId');
  if (ids.length === 0) throw new Ec2ApiError('MissingParameter', 'The request must contain the parameter InstanceId');
  for (const id of ids) checkIdFormat(id, idPatterns.instance, 'InvalidInstanceID.Malformed', 'i');
  return ids;
}

function instanceArn(s: Ec2Snapshot, id: string): string {
  return `arn:aws:ec2:${s.region}:${s.accountId}:instance/${id}`;
}

function stateXml(name: string, state: InstanceStateName): XmlElement[] {
  return el(name, [...el('code', instanceStateCodes[state]), ...el('name', state)]);
}

export const stopInstances: Ec2Operation = {
  parameters: new Set(['InstanceId', 'Force', 'Hibernate', 'DryRun']),
  supportsDryRun: true,
  resources(params, control) {
    return instanceIds(params).map((id) => ({
      arn: instanceArn(control, id),
      tags: findInstance(control, id)?.tags ?? {},
    }));
  },
  execute(params, store) {
    let s = store.control;
    const ids = instanceIds(params);
    params.boolean('Force'); // a malformed value is refused; forced or not, the emulator stops at once
    const missing = ids.filter((id) => !findInstance(s, id));
    if (missing.length > 0) {
      const list = missing.map((id) => `'${id}'`).join(', ');
      throw new Ec2ApiError('InvalidInstanceID.NotFound', `The instance ID${missing.length > 1 ? 's' : ''} ${list} do${missing.length > 1 ? '' : 'es'} not exist`);
    }
    if (params.boolean('Hibernate') === true) {
      throw new Ec2ApiError('InvalidParameterValue', 'The EC2 emulator does not hibernate instances.');
    }
    const changes = ids.map((id) => {
      const previous = findInstance(s, id)!.state;
      if (previous === 'terminated' || previous === 'shutting-down') {
        throw new Ec2ApiError('IncorrectInstanceState', `This instance '${id}' is not in a state from which it can be stopped.`);
      }
      const current: InstanceStateName = previous === 'stopped' ? 'stopped' : 'stopping';
      s = withInstanceState(s, id, 'stopped');
      return { id, previous, current };
    });
    store.commit(s, 'StopInstances');
    return set('instancesSet', changes, (c) => [
      ...el('instanceId', c.id),
      ...stateXml('currentState', c.current),
      ...stateXml('previousState', c.previous),
    ]);
  },
};
