// Goal: a three-node lab adds db-c and leaves the two-node lab exactly as it was (no root needed):
//   Given the two-node topology (either VIP mode), Then its hosts, addresses, EC2 ids and IMDS ports
//     are those of before db-c existed, and it builds no db-c;
//   Given the three-node topology, Then db-c is built with its own address in 198.18.0.0/15 (the
//     shared subnet, or a third subnet for route-table mode's third AZ), its own ENI and IMDS port;
//   Given a stale run's resources, Then the clean-up finds db-c's namespace and cgroup by the lab's
//     prefix, like every other host's.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emulatorConfigFor } from './emulator.js';
import { labPrefix, nodeOfEni, nsOf, otherNode, topologyFor } from './topology.js';

describe('lab topology with two and three database hosts', () => {
  it('two nodes: the hosts and addresses of the two-node lab, nothing of db-c built', () => {
    const t = topologyFor('secondary-ip');
    assert.deepEqual(t.dbNodes, ['db-a', 'db-b']);
    assert.deepEqual(t.hostNames, ['db-a', 'db-b', 'witness', 'client']);
    assert.deepEqual(['db-a', 'db-b', 'witness', 'client'].map((h) => t.hosts[h as 'db-a'].address), ['198.18.1.11', '198.18.1.12', '198.18.2.20', '198.18.3.30']);
    assert.deepEqual(t.ports.imds, { 'db-a': 8101, 'db-b': 8102, 'db-c': 8103 });
    const emulator = emulatorConfigFor(t).config;
    assert.deepEqual((emulator.networkInterfaces ?? []).map((e) => e.id), ['eni-0db0a0001', 'eni-0db0b0002']);
    assert.deepEqual(emulator.subnets.map((s) => s.id), ['subnet-0db00001']);
    const rt = topologyFor('route-table');
    assert.equal(rt.hosts['db-b'].address, '198.18.4.12');
    assert.deepEqual(emulatorConfigFor(rt).config.subnets.map((s) => s.id), ['subnet-0db00001', 'subnet-0db00004']);
    assert.equal(nodeOfEni(t, 'eni-0db0c0003'), null, 'db-c is no node of a two-node lab');
  });

  it('three nodes: db-c with its own address, ENI and IMDS, in a third subnet (AZ) in route-table mode', () => {
    const t = topologyFor('secondary-ip', 3);
    assert.deepEqual(t.dbNodes, ['db-a', 'db-b', 'db-c']);
    assert.deepEqual(t.hostNames, ['db-a', 'db-b', 'db-c', 'witness', 'client']);
    assert.equal(t.hosts['db-c'].address, '198.18.1.13');
    assert.equal(t.hosts['db-c'].ns, 'pgvip-lab-db-c');
    const emulator = emulatorConfigFor(t).config;
    assert.deepEqual((emulator.networkInterfaces ?? []).map((e) => e.privateIpAddress), ['198.18.1.11', '198.18.1.12', '198.18.1.13']);
    assert.equal(nodeOfEni(t, 'eni-0db0c0003'), 'db-c');
    const rt = topologyFor('route-table', 3);
    assert.equal(rt.hosts['db-c'].address, '198.18.5.13');
    assert.deepEqual(emulatorConfigFor(rt).config.subnets.map((s) => [s.id, s.availabilityZone]), [
      ['subnet-0db00001', 'eu-west-1a'], ['subnet-0db00004', 'eu-west-1b'], ['subnet-0db00005', 'eu-west-1c'],
    ]);
    for (const h of rt.hostNames) assert.match(rt.hosts[h].address, /^198\.1[89]\./);
  });

  it('db-c is named with the lab prefix, so a stale run\'s namespace, cgroup and nftables go with the clean-up', () => {
    // removeLabResourcesSync() removes every namespace and freezer cgroup named pgvip-lab-* (and the
    // nftables tables and processes inside them): db-c's are found by the same prefix.
    assert.ok(nsOf('db-c').startsWith(labPrefix));
    assert.throws(() => otherNode('db-c'), /two-node labs/);
  });
});
