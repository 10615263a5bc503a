// The dashboard's script, inlined into the page. Plain browser JavaScript in a string (the
// witness's TypeScript has no DOM types, and the page must not load anything else): it polls
// api/v1/clusters on the page's own origin, renders every cluster with textContent only (event
// details come from the cluster and must never become markup), and says loudly when the data is
// stale. No string in it may contain a backtick or a dollar-brace: it lives in a template literal.
export const dashboardScript = `
(function () {
  'use strict';
  var pollMs = Number(document.body.getAttribute('data-poll-ms')) || 2000;
  var timeoutMs = Math.max(500, Math.min(pollMs, 5000));
  var tokenKey = 'pgvip-operator-token';
  var memoryToken = null;
  var lastOkAt = null;
  var failingSince = null;
  var timer = null;
  var main = document.getElementById('clusters');
  var statusEl = document.getElementById('status');
  var login = document.getElementById('login');
  var loginInput = document.getElementById('token');
  var loginProblem = document.getElementById('login-problem');

  function readToken() {
    try { return sessionStorage.getItem(tokenKey) || memoryToken; } catch (e) { return memoryToken; }
  }
  function storeToken(t) {
    memoryToken = t;
    try { sessionStorage.setItem(tokenKey, t); } catch (e) { /* private mode: memory only */ }
  }
  // ?token=... is accepted once, then removed from the address bar and the browser history.
  (function takeTokenFromUrl() {
    var url = new URL(window.location.href);
    var t = url.searchParams.get('token');
    if (t) {
      storeToken(t);
      url.searchParams.delete('token');
      history.replaceState(null, '', url.pathname + url.search + url.hash);
    }
  })();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function clock(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    var today = new Date();
    var sameDay = d.toDateString() === today.toDateString();
    return (sameDay ? '' : d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ') + clock(d);
  }
  function duration(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return '-';
    if (ms < 0) ms = 0;
    if (ms < 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 120000) return Math.round(ms / 1000) + ' s';
    if (ms < 7200000) return Math.round(ms / 60000) + ' min';
    return (ms / 3600000).toFixed(1) + ' h';
  }
  function bytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '-';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var u = 0;
    while (Math.abs(n) >= 1024 && u < units.length - 1) { n = n / 1024; u++; }
    return u === 0 ? n + ' B' : n.toFixed(1) + ' ' + units[u];
  }
  function nodeState(n) {
    if (n.withdrawn === true) return n.reachable ? 'withdrawn (election)' : 'unreachable, withdrawn';
    if (!n.reachable) return n.pgReachable ? 'agent down, pg up' : 'unreachable';
    if (n.pgReachable === false) return 'postgres down';
    if (n.streaming === true) return 'streaming';
    if (n.streaming === false && n.role !== 'primary') return 'not streaming';
    if (n.role === null) return 'no status yet';
    return 'running';
  }

  function renderCluster(c) {
    var sec = el('section', 'cluster' + (c.maintenance ? ' maintenance' : '') + (c.primary === null ? ' headless' : ''));
    sec.setAttribute('data-cluster', c.cluster);
    sec.setAttribute('aria-label', 'cluster ' + c.cluster);
    if (c.maintenance) {
      var m = el('div', 'banner banner-maintenance', 'Maintenance mode: automatic failover is PAUSED for ' + c.cluster);
      m.setAttribute('role', 'alert');
      m.appendChild(el('small', null, 'A failed primary will not be replaced. Resume with: pgvip maintenance off --cluster ' + c.cluster));
      sec.appendChild(m);
    }
    if (c.primary === null) {
      var a = el('div', 'banner banner-alarm', 'No primary: no node holds write authority (term ' + c.term + ')');
      a.setAttribute('role', 'alert');
      sec.appendChild(a);
    }
    sec.appendChild(el('h2', null, c.cluster));
    var facts = el('div', 'facts');
    function fact(label, value) { var s = el('span', null, label + ' '); s.appendChild(el('b', null, value)); facts.appendChild(s); }
    fact('term', c.term);
    fact('primary', c.primary === null ? 'none' : c.primary);
    fact('VIP', c.vip.address + ' (' + c.vip.mode + ')' + (c.primary === null ? ' on nobody' : ' on ' + c.primary));
    // More than two nodes (etcd): the sync record as a claim, ANY k (members), and each node's WAL
    // position, sync membership and priority in the table.
    var many = c.nodes.length > 2;
    var sync = c.quorum ? c.quorum.sync : undefined;
    if (many && sync !== undefined) {
      fact('sync record', sync === null ? 'none yet' : sync.k > 0 && sync.members.length > 0 ? 'ANY ' + sync.k + ' (' + sync.members.join(', ') + ')' : 'none (async)');
    } else {
      fact('sync standby', c.syncEligible === null ? 'none' : c.syncEligible);
    }
    var positions = c.quorum && c.quorum.positions ? c.quorum.positions : [];
    if (positions.length > 0) {
      fact('election under way: final positions', positions.map(function (p) { return p.node + ' ' + p.flushLsn + ' (timeline ' + p.timeline + (p.eligible === false ? ', not eligible' : '') + ')'; }).join(', '));
    }
    if (c.promiseRemainingMs > 0) fact('witness promise', duration(c.promiseRemainingMs));
    if (c.switchover) fact('switchover to ' + c.switchover.to, c.switchover.dueInMs > 0 ? 'due in ' + duration(c.switchover.dueInMs) : 'due now');
    // A cluster on etcd: the witness only observes it; say what it sees there.
    var q = c.quorum;
    if (q) {
      fact('quorum', q.reachable ? 'etcd' : 'etcd UNREACHABLE (' + (q.why || 'no answer') + ')');
      var k = q.leaderKey;
      fact('leader key', k === null ? 'none' : k.node + ', term ' + k.term + (k.leaseTtlS === null ? '' : ', TTL ' + k.leaseTtlS + ' s'));
      if (q.members.length > 0) {
        var up = q.members.filter(function (m) { return m.ok; }).length;
        fact('etcd members', up + '/' + q.members.length + ' answering');
      }
    }
    sec.appendChild(facts);

    var table = el('table');
    var head = el('tr');
    var headers = many
      ? ['VIP', 'Node', 'Role', 'Term', 'Lease', 'LSN', 'Lag', 'Timeline', 'Sync', 'Priority', 'State', 'Promotion', 'Last seen']
      : ['VIP', 'Node', 'Role', 'Term', 'Lease', 'Lag', 'Timeline', 'State', 'Promotion', 'Last seen'];
    headers.forEach(function (h) { head.appendChild(el('th', null, h)); });
    var thead = el('thead'); thead.appendChild(head); table.appendChild(thead);
    var tbody = el('tbody');
    c.nodes.forEach(function (n) {
      var tr = el('tr');
      tr.setAttribute('data-node', n.node);
      var isPrimary = n.node === c.primary;
      tr.appendChild(el('td', 'vip', isPrimary ? '◆ VIP' : ''));
      tr.appendChild(el('td', null, n.node));
      var roleCell = el('td');
      roleCell.appendChild(el('span', 'role role-' + (n.role || 'unknown'), n.role || 'unknown'));
      tr.appendChild(roleCell);
      tr.appendChild(el('td', 'num', n.term === null ? '-' : n.term));
      tr.appendChild(el('td', 'num', duration(n.leaseRemainingMs)));
      if (many) tr.appendChild(el('td', 'num', n.lsn || '-'));
      tr.appendChild(el('td', 'num', bytes(n.lagBytes)));
      tr.appendChild(el('td', 'num', n.timeline === null ? '-' : n.timeline));
      if (many) {
        var member = sync && sync.k > 0 && sync.members.indexOf(n.node) >= 0;
        var syncText = isPrimary ? '-' : n.noFailover === true ? 'async' : n.syncMember === true || member ? 'member' : n.syncMember === false || (sync && !member) ? 'async' : '-';
        tr.appendChild(el('td', 'sync', syncText));
        tr.appendChild(el('td', 'num', n.priority === undefined ? '-' : n.priority));
      }
      var state = nodeState(n);
      tr.appendChild(el('td', state === 'streaming' || state === 'running' ? 'ok' : 'bad', state));
      var promotion = isPrimary ? '-' : n.noFailover === true ? 'never (noFailover)' : n.promotionBlocker === null ? 'eligible' : 'blocked: ' + n.promotionBlocker;
      tr.appendChild(el('td', isPrimary || n.noFailover === true ? null : n.promotionBlocker === null ? 'ok' : 'bad blocker', promotion));
      tr.appendChild(el('td', 'num', n.lastSeenMsAgo === null ? 'never' : duration(n.lastSeenMsAgo) + ' ago'));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    sec.appendChild(table);

    sec.appendChild(el('h3', null, 'Latest events'));
    var list = el('ol', 'events');
    (c.events || []).slice(0, 8).forEach(function (e) {
      var li = el('li');
      li.appendChild(el('time', null, when(e.at)));
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('span', 'type', e.type));
      li.appendChild(document.createTextNode(' ' + (e.node ? e.node + ' · ' : '') + 'term ' + e.term + ' — ' + e.detail));
      list.appendChild(li);
    });
    if (list.children.length === 0) list.appendChild(el('li', 'empty', 'no events yet'));
    sec.appendChild(list);
    return sec;
  }

  function render(clusters) {
    var sections = clusters.map(renderCluster);
    if (sections.length === 0) sections = [el('p', 'empty', 'This witness serves no cluster.')];
    main.replaceChildren.apply(main, sections);
  }

  function setStatus(text, cls) {
    statusEl.textContent = text;
    statusEl.className = cls;
    document.body.classList.toggle('stale', cls === 'stale');
  }

  function showLogin(rejected) {
    login.hidden = false;
    loginProblem.textContent = rejected ? 'That token was not accepted.' : '';
    setStatus('Token required', 'auth');
  }

  function failed(why) {
    if (failingSince === null) failingSince = new Date();
    if (lastOkAt === null) setStatus('Witness unreachable since ' + clock(failingSince) + ' (' + why + ')', 'stale');
    else setStatus('Witness unreachable — stale since ' + clock(lastOkAt) + ' (' + why + ')', 'stale');
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    var ctrl = new AbortController();
    var abort = setTimeout(function () { ctrl.abort(); }, timeoutMs);
    var headers = { accept: 'application/json' };
    var token = readToken();
    if (token) headers.authorization = 'Bearer ' + token;
    fetch('api/v1/clusters', { headers: headers, cache: 'no-store', credentials: 'omit', signal: ctrl.signal })
      .then(function (res) {
        if (res.status === 401) { showLogin(Boolean(token)); return null; }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (body) {
        if (body === null) return;
        if (!body || !Array.isArray(body.clusters)) throw new Error('unexpected answer');
        login.hidden = true;
        render(body.clusters);
        lastOkAt = new Date();
        failingSince = null;
        setStatus('Live · updated ' + clock(lastOkAt), 'live');
      })
      .catch(function (err) {
        failed(err && err.name === 'AbortError' ? 'no answer within ' + timeoutMs + ' ms' : (err && err.message) || 'error');
      })
      .finally(function () {
        clearTimeout(abort);
        schedule(pollMs);
      });
  }

  login.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = loginInput.value.trim();
    if (!t) return;
    storeToken(t);
    loginInput.value = '';
    loginProblem.textContent = '';
    setStatus('Checking token…', '');
    schedule(0);
  });

  poll();
})();
`;
