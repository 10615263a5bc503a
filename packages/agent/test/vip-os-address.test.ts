// Goal: the VIP is added to and removed from the OS interface idempotently — first with a scripted
// `ip` (every answer iproute2 gives), then for real in a throwaway network namespace.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { OsAddress, runCommand, type CommandOutcome, type RunCommand } from '@pgvip/agent';
import { isPgvipError } from '@pgvip/shared';
import { MemoryIp } from './vip-helpers.js';

const vip = '198.18.1.100';

/** An `ip` that answers each call from a script, and records the calls. */
function scriptedIp(...answers: Partial<CommandOutcome>[]): { run: RunCommand; calls: string[] } {
  const calls: string[] = [];
  const run: RunCommand = async (file, args) => {
    calls.push([file, ...args].join(' '));
    const answer = answers.shift() ?? {};
    return { exitCode: 0, timedOut: false, stdout: '', stderr: '', ...answer };
  };
  return { run, calls };
}

const shows = (...prefixes: number[]) => ({ stdout: JSON.stringify([{ ifname: 'eth0', addr_info: prefixes.map((p) => ({ family: 'inet', local: vip, prefixlen: p })) }]) });

describe('OsAddress with a scripted ip', () => {
  it('adds VIP/prefix to the device, and treats "already assigned" (new and old wording) as done', async () => {
    const { run, calls } = scriptedIp({}, { exitCode: 2, stderr: 'Error: ipv4: Address already assigned.\n' }, { exitCode: 2, stderr: 'RTNETLINK answers: File exists\n' });
    const os = new OsAddress({ address: vip, device: 'eth0', run });
    await os.add(24);
    await os.add(24);
    await os.add(24);
    assert.deepEqual(calls, Array(3).fill(`ip addr add ${vip}/24 dev eth0`));
  });

  it('runs every command inside the namespace when one is configured', async () => {
    const { run, calls } = scriptedIp({}, shows(32), {});
    const os = new OsAddress({ address: vip, device: 'veth0', netns: 'lab-db-a', run });
    await os.add(32);
    await os.drop();
    assert.deepEqual(calls, [`ip -n lab-db-a addr add ${vip}/32 dev veth0`, 'ip -n lab-db-a -j -4 addr show dev veth0', `ip -n lab-db-a addr del ${vip}/32 dev veth0`]);
  });

  it('drops the VIP with whatever prefix it carries, and treats "not found" (new and old wording) as done', async () => {
    const { run, calls } = scriptedIp(shows(24, 32), { exitCode: 2, stderr: 'Error: ipv4: Address not found.\n' }, { exitCode: 2, stderr: 'RTNETLINK answers: Cannot assign requested address\n' });
    await new OsAddress({ address: vip, device: 'eth0', run }).drop();
    assert.deepEqual(calls.slice(1), [`ip addr del ${vip}/24 dev eth0`, `ip addr del ${vip}/32 dev eth0`]);
  });

  it('drops nothing when the VIP is absent (other addresses stay)', async () => {
    const other = { stdout: JSON.stringify([{ ifname: 'eth0', addr_info: [{ family: 'inet', local: '198.18.1.10', prefixlen: 24 }] }]) };
    const { run, calls } = scriptedIp(other);
    const os = new OsAddress({ address: vip, device: 'eth0', run });
    await os.drop();
    assert.equal(calls.length, 1);
  });

  it('fails with PGVIP_VIP_OS_ADDRESS quoting iproute2 when the device does not exist', async () => {
    const { run } = scriptedIp({ exitCode: 1, stderr: 'Cannot find device "eth9"\n' });
    await assert.rejects(new OsAddress({ address: vip, device: 'eth9', run }).add(24), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS') && /Cannot find device "eth9"/.test(err.detail));
  });

  it('fails with PGVIP_VIP_OS_ADDRESS when ip times out, even if its output looks like success', async () => {
    const { run } = scriptedIp({ exitCode: null, timedOut: true, stderr: 'Address already assigned' });
    await assert.rejects(new OsAddress({ address: vip, device: 'eth0', run, timeoutMs: 50 }).add(24), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS') && /timed out after 50 ms/.test(err.detail));
  });

  it('reads presence from the JSON listing', async () => {
    const ip = new MemoryIp();
    const os = new OsAddress({ address: vip, device: 'eth0', run: ip.run });
    assert.equal(await os.isPresent(), false);
    await os.add(24);
    assert.equal(await os.isPresent(), true);
    assert.deepEqual(await os.prefixesPresent(), [24]);
  });

  it('runCommand reports a command that cannot start instead of throwing', async () => {
    const out = await runCommand('/nonexistent/pgvip-ip', ['addr'], { timeoutMs: 1_000 });
    assert.equal(out.exitCode, null);
    assert.match(out.stderr, /ENOENT/);
  });

  it('runCommand kills a command at its timeout', async () => {
    const out = await runCommand('sleep', ['5'], { timeoutMs: 100 });
    assert.equal(out.timedOut, true);
  });
});

describe('OsAddress reading its own namespace in-process (no `ip` spawned for a check)', () => {
  const info = (address: string, cidr: string | null, netmask: string) => ({ address, cidr, netmask, family: 'IPv4' as const, mac: '02:00:00:00:00:01', internal: false });

  it('finds the VIP on the device with its prefix, from the cidr or else the netmask, and ignores other devices', async () => {
    const readInterfaces = () => ({
      eth0: [info('198.18.1.10', '198.18.1.10/24', '255.255.255.0'), info(vip, '198.18.1.100/32', '255.255.255.255'), info(vip, null, '255.255.255.0')],
      eth1: [info(vip, '198.18.1.100/16', '255.255.0.0')],
    });
    assert.deepEqual(await new OsAddress({ address: vip, device: 'eth0', readInterfaces }).prefixesPresent(), [32, 24]);
    assert.equal(await new OsAddress({ address: '198.18.1.101', device: 'eth0', readInterfaces }).isPresent(), false);
  });

  it('reads the real loopback device', async () => {
    assert.deepEqual(await new OsAddress({ address: '127.0.0.1', device: 'lo' }).prefixesPresent(), [8]);
    assert.equal(await new OsAddress({ address: vip, device: 'lo' }).isPresent(), false);
  });

  it('asks `ip` about a device it does not list, so a missing device is still an error', async () => {
    await assert.rejects(new OsAddress({ address: vip, device: 'nope0', readInterfaces: () => ({}) }).isPresent(), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS') && /nope0/.test(err.detail));
  });
});

const isRoot = process.getuid?.() === 0;
const namespacePrefix = 'pgvip-t-vip-';

function ipNow(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces that a crashed earlier run left behind (not those of a run still going). */
function deleteStaleNamespaces(): void {
  for (const line of ipNow('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = Number(name.slice(namespacePrefix.length));
    if (name.startsWith(namespacePrefix) && !(Number.isInteger(pid) && pid > 0 && processAlive(pid))) ipNow('netns', 'delete', name);
  }
}

describe('OsAddress for real, in a network namespace', { skip: isRoot ? false : 'needs root to create a network namespace (run the tests as root)' }, () => {
  it('adds, re-adds, deletes and re-deletes the VIP on a veth device', async (t) => {
    deleteStaleNamespaces();
    const netns = `${namespacePrefix}${process.pid}`;
    ipNow('netns', 'add', netns);
    t.after(() => ipNow('netns', 'delete', netns));
    ipNow('-n', netns, 'link', 'add', 'vip0', 'type', 'veth', 'peer', 'name', 'vip1');
    ipNow('-n', netns, 'link', 'set', 'vip0', 'up');
    ipNow('-n', netns, 'addr', 'add', '198.18.1.10/24', 'dev', 'vip0');
    const addresses = () => (JSON.parse(ipNow('-n', netns, '-j', '-4', 'addr', 'show', 'dev', 'vip0')) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)
      .flatMap((link) => link.addr_info.map((a) => `${a.local}/${a.prefixlen}`));

    const os = new OsAddress({ address: vip, device: 'vip0', netns });
    await os.add(24);
    await os.add(24);
    assert.deepEqual(addresses(), ['198.18.1.10/24', `${vip}/24`]);
    assert.equal(await os.isPresent(), true);
    await os.drop();
    await os.drop();
    assert.deepEqual(addresses(), ['198.18.1.10/24'], 'only the VIP went; the host address stays');
    assert.equal(await os.isPresent(), false);

    await os.add(32);
    await os.drop();
    assert.deepEqual(addresses(), ['198.18.1.10/24'], 'a /32 VIP (route-table mode) goes too');
    await assert.rejects(new OsAddress({ address: vip, device: 'nope0', netns }).add(24), (err) => isPgvipError(err, 'PGVIP_VIP_OS_ADDRESS') && /nope0/.test(err.detail));
  });
});
