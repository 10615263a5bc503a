// Goal: the "dark link" fault drops what the host sends and receives at the receivers' input only, so
// no sender sees a local drop (TCP then backs off as across a real network); other hosts' traffic
// with each other is untouched (no root needed: the nftables script is pure).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nftScript } from './faults.js';
import { topologyFor } from './topology.js';

describe('dark link fault', () => {
  const t = topologyFor('secondary-ip');
  const dark = [{ kind: 'dark', host: 'db-b' } as const];
  const chains = (script: string) => ({
    input: /chain input \{[^}]*\}/.exec(script)![0],
    output: /chain output \{[^}]*\}/.exec(script)![0],
  });

  it('drops everything arriving at the dark host, and nothing it sends', () => {
    const { input, output } = chains(nftScript(t, 'db-b', dark));
    assert.match(input, /iifname "eth0" drop/);
    assert.doesNotMatch(output, /drop/);
  });

  it('every other host drops what arrives from the dark host, sends everything, and keeps the rest', () => {
    for (const h of ['db-a', 'witness', 'client'] as const) {
      const { input, output } = chains(nftScript(t, h, dark));
      assert.match(input, new RegExp(`iifname "eth0" ip saddr ${t.hosts['db-b'].address.replace(/\./g, '\\.')} drop`));
      assert.equal(input.match(/drop/g)?.length, 1, `${h}: one rule`);
      assert.doesNotMatch(output, /drop/);
    }
  });
});
