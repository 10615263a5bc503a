// Goal: the witness unit's NODE_OPTIONS (V8 heap sizing) is accepted by the Node.js pgvip runs on and
// bounds the heap as docs/witness.md (Capacity) says. Without it, Node 24's V8 let a witness of 100
// clusters (live heap about 40 MB) grow past 300 MB resident, putting off major collections; and a
// flag that NODE_OPTIONS does not allow would stop the witness from starting at all.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { daemonUnitEnvironment } from './systemd-unit.js';

const mb = 1024 * 1024;

/** V8's heap limit (old generation plus the young generation's reserve) in a node started as the unit does. */
function heapLimitMbUnderUnit(): number {
  const env = { ...process.env, ...daemonUnitEnvironment('witness') };
  const script = "console.log(require('node:v8').getHeapStatistics().heap_size_limit)";
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `node refused the unit's NODE_OPTIONS (${env.NODE_OPTIONS}): ${r.stderr}`);
  return Number(r.stdout) / mb;
}

describe('the witness unit sizes the V8 heap', () => {
  it('sets NODE_OPTIONS that Node accepts: a limit well above the live heap and far below the default', () => {
    const env = daemonUnitEnvironment('witness');
    const oldSpaceMb = Number(/--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? '')?.[1]);
    assert.ok(oldSpaceMb > 0, `NODE_OPTIONS sets no --max-old-space-size: ${env.NODE_OPTIONS}`);
    const limitMb = heapLimitMbUnderUnit();
    // 100 clusters keep about 40 MB live: at least 5x that, and nowhere near V8's default (GBs).
    assert.ok(limitMb >= 200 && limitMb <= 400, `heap limit ${limitMb.toFixed(0)} MB`);
    // The rest of the limit is the young generation's reserve, three semi-spaces: Node 24 lets them grow
    // to 64 MB each (192 MB), most of the growth measured; the unit keeps them to a few MB.
    assert.ok(limitMb - oldSpaceMb <= 24, `young generation up to ${(limitMb - oldSpaceMb).toFixed(0)} MB`);
  });
});
