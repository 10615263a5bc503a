// The dashboard's stylesheet, inlined into the page (no CDN, no second request). Maintenance and
// "no primary" are meant to be seen from across the room: striped, saturated, large.
export const dashboardStyle = `
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6672; --line: #d9dee4; --card: #fff; --bg: #f1f3f6;
  --primary: #137333; --standby: #1a56b0; --warn: #b06000; --bad: #b3261e; --stale: #7a7f86; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1f2933; color: #fff; position: sticky; top: 0; z-index: 2; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; letter-spacing: .02em; }
header h1 span { color: #9fb3c8; font-weight: 400; }
#status { margin-left: auto; padding: 4px 12px; border-radius: 999px; font-weight: 600; background: #2e3b47; }
#status.live { background: #1e5631; }
#status.stale { background: var(--bad); animation: pulse 1.6s ease-in-out infinite; }
#status.auth { background: var(--warn); }
@keyframes pulse { 50% { opacity: .65; } }
main { padding: 16px 20px 40px; display: grid; gap: 18px; }
body.stale main { filter: grayscale(1); opacity: .55; }
.empty { color: var(--muted); }
.cluster { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.05); }
.cluster.maintenance { border: 3px solid #f2b200; }
.cluster.headless { border: 3px solid var(--bad); }
.banner { margin: -2px 0 12px; padding: 12px 16px; border-radius: 6px; font-size: 18px; font-weight: 800; letter-spacing: .03em; text-transform: uppercase; }
.banner small { display: block; font-size: 13px; font-weight: 600; text-transform: none; letter-spacing: 0; }
.banner-maintenance { color: #1d1d1d; background: repeating-linear-gradient(-45deg, #ffd23f 0 18px, #ffe68a 18px 36px); border: 2px solid #1d1d1d; }
.banner-alarm { color: #fff; background: repeating-linear-gradient(-45deg, #b3261e 0 18px, #c9463e 18px 36px); }
.cluster h2 { margin: 0 0 4px; font-size: 20px; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 18px; color: var(--muted); margin-bottom: 10px; }
.facts b { color: var(--ink); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
td.blocker { white-space: normal; }
.role { display: inline-block; padding: 1px 9px; border-radius: 999px; font-weight: 700; color: #fff; background: var(--stale); }
.role-primary { background: var(--primary); }
.role-standby { background: var(--standby); }
.role-fenced, .role-demoted { background: var(--bad); }
.role-promoting, .role-candidate, .role-rejoining, .role-starting { background: var(--warn); }
.vip { font-weight: 800; color: var(--primary); }
.bad { color: var(--bad); font-weight: 600; }
.ok { color: var(--primary); }
h3 { margin: 14px 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
ol.events { list-style: none; margin: 0; padding: 0; font-size: 13px; }
ol.events li { padding: 3px 0; border-bottom: 1px dashed var(--line); }
ol.events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: 8px; }
ol.events .type { font-weight: 700; margin-right: 6px; }
#login { max-width: 420px; margin: 40px auto; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px; }
#login[hidden] { display: none; }
#login label { display: block; font-weight: 600; margin-bottom: 6px; }
#login input { width: 100%; padding: 8px; font: inherit; margin-bottom: 10px; }
#login p { margin: 0 0 10px; color: var(--muted); }
#login .bad { margin-bottom: 10px; }
`;
