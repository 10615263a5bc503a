import { Pool } from 'undici';
const [url, c, d] = process.argv.slice(2);
const target = new URL(url); const pool = new Pool(target.origin, { connections: Number(c), pipelining: 1 });
const lat = []; const deadline = performance.now() + Number(d);
async function lane() { while (performance.now() < deadline) { const s = performance.now(); const r = await pool.request({ method: 'GET', path: target.pathname }); await r.body.text(); lat.push(performance.now() - s); } }
await Promise.all(Array.from({ length: Number(c) }, lane)); await pool.close(); lat.sort((a, b) => a - b);
console.log(JSON.stringify({ n: lat.length, p50: lat[Math.floor(lat.length / 2)].toFixed(2), p99: lat[Math.floor(lat.length * 0.99)].toFixed(2) }));
