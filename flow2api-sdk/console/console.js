// flow2api console: a small single-page app over the admin API (/api/...) and the API routes
// (/v1/...), which accept the admin session as the root caller. No dependency, no build step,
// nothing from another origin (the page's Content-Security-Policy enforces it). Every piece of
// data goes into the page as text (textContent, attributes), never as markup.
(function () {
  'use strict';

  // The gateway's root: this script lives at <root>/admin/console.js (or /manage/), so the
  // console keeps working when a host mounts the gateway under a prefix.
  var ROOT = new URL('..', document.currentScript.src).href;
  // Where the original's console keeps its session; the Token Updater extension reads it.
  var TOKEN_KEY = 'adminToken';

  var main = document.getElementById('main');
  var top = document.getElementById('top');
  var nav = document.getElementById('nav');
  var navToggle = document.getElementById('nav-toggle');
  var toastEl = document.getElementById('toast');
  var loginNotice = '';

  // ---------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------

  function h(tag, props) {
    var el = document.createElement(tag);
    var kids = Array.prototype.slice.call(arguments, 2);
    var value;
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'value') value = v;
        else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
        else if (k === 'checked' || k === 'disabled' || k === 'multiple' || k === 'required') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
      });
    }
    append(el, kids);
    if (value !== undefined) el.value = value;
    return el;
  }

  function append(el, kids) {
    kids.forEach(function (kid) {
      if (Array.isArray(kid)) return append(el, kid);
      if (kid === null || kid === undefined || kid === false) return;
      el.append(kid instanceof Node ? kid : String(kid));
    });
    return el;
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    append(el, Array.prototype.slice.call(arguments, 2));
    return el;
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return (prefix || 'f') + uid; }

  // A labelled input: label, control, hint and an error slot the control describes itself by.
  function field(label, control, hint) {
    var id = control.id || nextId('f');
    control.id = id;
    var err = h('div', { class: 'field-error', id: id + '-err', 'aria-live': 'polite' });
    var hintEl = hint ? h('div', { class: 'hint', id: id + '-hint', text: hint }) : null;
    control.setAttribute('aria-describedby', (hintEl ? id + '-hint ' : '') + id + '-err');
    var wrap = h('div', { class: 'field' }, h('label', { for: id, text: label }), control, hintEl, err);
    wrap.setError = function (msg) {
      err.textContent = msg || '';
      if (msg) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
    };
    control.fieldWrap = wrap;
    return wrap;
  }

  function withClass(el, cls) { el.classList.add(cls); return el; }

  function checkbox(label, checked, name) {
    var id = nextId('c');
    var box = h('input', { type: 'checkbox', id: id, name: name, checked: checked });
    return { el: h('div', { class: 'check' }, box, h('label', { for: id, text: label })), box: box };
  }

  function toast(msg, bad) {
    toastEl.textContent = msg;
    toastEl.className = 'toast show' + (bad ? ' bad' : '');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { toastEl.className = 'toast'; }, bad ? 6000 : 3000);
  }

  function page(title) {
    document.title = title + ' · flow2api console';
    main.replaceChildren();
    var heading = h('h1', { text: title, tabindex: '-1' });
    main.append(heading);
    return heading;
  }

  function fmtNum(n) {
    if (n === null || n === undefined || n === '') return '–';
    return typeof n === 'number' ? n.toLocaleString() : String(n);
  }

  function fmtTime(iso) {
    if (!iso) return '–';
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString();
  }

  function fmtDuration(ms) {
    var sec = Math.max(0, Math.round(ms / 1000));
    if (sec < 60) return sec + ' s';
    var min = Math.floor(sec / 60);
    if (min < 60) return min + ' min ' + (sec % 60) + ' s';
    var hr = Math.floor(min / 60);
    if (hr < 48) return hr + ' h ' + (min % 60) + ' min';
    return Math.floor(hr / 24) + ' days';
  }

  function ago(iso) {
    if (!iso) return 'never';
    var ms = Date.now() - new Date(iso).getTime();
    if (isNaN(ms)) return String(iso);
    return ms < 5000 ? 'just now' : fmtDuration(ms) + ' ago';
  }

  // A table that turns into stacked cards at phone width (each cell labelled by its column).
  function table(columns, rows, opts) {
    opts = opts || {};
    var thead = h('thead', null, h('tr', null, columns.map(function (c) {
      return h('th', { scope: 'col', class: c.num ? 'num' : null, text: c.label });
    })));
    var tbody = h('tbody');
    rows.forEach(function (row) {
      var tr = h('tr', { class: opts.onRow ? 'clickable' : null });
      columns.forEach(function (c) {
        var v = c.cell(row);
        // One child per cell, so that a stacked card's label and value stay side by side.
        tr.append(h('td', { 'data-label': c.label, class: c.num ? 'num' : null }, h('div', null, v)));
      });
      if (opts.onRow) {
        tr.addEventListener('click', function (e) {
          if (e.target.closest('button, a, input, select')) return;
          opts.onRow(row);
        });
      }
      tbody.append(tr);
    });
    if (!rows.length) {
      tbody.append(h('tr', null, h('td', { colspan: columns.length, class: 'hint', text: opts.empty || 'Nothing here yet.' })));
    }
    return h('div', { class: 'table-wrap' }, h('table', { class: 'stack' }, opts.caption ? h('caption', { class: 'sr-only', text: opts.caption }) : null, thead, tbody));
  }

  function download(name, text) {
    var url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    var a = h('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  // ---------------------------------------------------------------------------------------
  // The API
  // ---------------------------------------------------------------------------------------

  function ApiFail(status, message, data) {
    this.status = status;
    this.message = message;
    this.data = data;
  }

  function messageOf(data) {
    if (!data || typeof data !== 'object') return typeof data === 'string' && data.length < 300 ? data : '';
    if (data.error && typeof data.error === 'object') return data.error.message || '';
    return data.message || data.detail || (typeof data.error === 'string' ? data.error : '');
  }

  function token() { return localStorage.getItem(TOKEN_KEY); }

  async function send(method, path, body) {
    var headers = {};
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var resp;
    try {
      resp = await fetch(ROOT + path, init);
    } catch (e) {
      throw new ApiFail(0, 'The gateway could not be reached.');
    }
    if (resp.status === 401 && path !== 'api/login') {
      endSession('Your session has ended; log in again.');
      throw new ApiFail(401, 'Your session has ended; log in again.');
    }
    return resp;
  }

  async function api(method, path, body) {
    var resp = await send(method, path, body);
    var text = await resp.text();
    var data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!resp.ok) {
      throw new ApiFail(resp.status, messageOf(data) || ('HTTP ' + resp.status), data);
    }
    return data;
  }

  function failText(e) { return e instanceof ApiFail ? e.message : String(e && e.message || e); }

  function endSession(notice) {
    localStorage.removeItem(TOKEN_KEY);
    loginNotice = notice || '';
    if (location.hash !== '#/login') location.hash = '#/login';
    else route();
  }

  // ---------------------------------------------------------------------------------------
  // Login, logout, password
  // ---------------------------------------------------------------------------------------

  function loginPage() {
    top.hidden = true;
    document.title = 'Log in · flow2api console';
    main.replaceChildren();
    var user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
    var pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    var err = h('p', { class: 'error', role: 'alert' }, loginNotice);
    loginNotice = '';
    var submit = h('button', { type: 'submit', class: 'primary', text: 'Log in' });
    var form = h('form', { class: 'panel login', 'aria-labelledby': 'login-title' },
      h('h1', { id: 'login-title', text: 'flow2api console' }),
      field('Username', user), field('Password', pass), err, submit);
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      submit.disabled = true;
      err.textContent = '';
      try {
        var r = await api('POST', 'api/login', { username: user.value, password: pass.value });
        localStorage.setItem(TOKEN_KEY, r.token);
        var next = location.hash && location.hash !== '#/login' ? location.hash : '#/accounts';
        if (location.hash === next) route(); else location.hash = next;
      } catch (ex) {
        err.textContent = ex.status === 401 ? 'Wrong username or password.' : failText(ex);
        submit.disabled = false;
        pass.focus();
      }
    });
    main.append(form);
    user.focus();
  }

  async function logout() {
    try { await api('POST', 'api/logout'); } catch (e) { /* ends locally anyway */ }
    endSession('You have logged out.');
  }

  function passwordPage() {
    page('Change password');
    var oldP = h('input', { type: 'password', autocomplete: 'current-password', required: true });
    var newP = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: '8' });
    var again = h('input', { type: 'password', autocomplete: 'new-password', required: true });
    var fNew = field('New password', newP, 'At least 8 characters, at most 72 bytes. Every session ends when it changes.');
    var fAgain = field('New password again', again);
    var err = h('p', { class: 'error', role: 'alert' });
    var form = h('form', { class: 'panel' },
      h('input', { type: 'text', autocomplete: 'username', class: 'sr-only', 'aria-hidden': 'true', tabindex: '-1', value: 'admin' }),
      field('Current password', oldP), fNew, fAgain, err,
      h('button', { type: 'submit', class: 'primary', text: 'Change password' }));
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      err.textContent = '';
      fNew.setError(newP.value.length < 8 ? 'At least 8 characters.' : '');
      fAgain.setError(again.value !== newP.value ? 'The two new passwords differ.' : '');
      if (newP.value.length < 8 || again.value !== newP.value) return;
      try {
        await api('POST', 'api/admin/change-password', { old_password: oldP.value, new_password: newP.value });
        endSession('Password changed; log in with the new one.');
      } catch (ex) {
        if (ex.status !== 401) err.textContent = failText(ex);
      }
    });
    main.append(form);
  }

  // ---------------------------------------------------------------------------------------
  // Accounts
  // ---------------------------------------------------------------------------------------

  var accountsState = { limit: 50, cursors: [''], page: 0 };

  function statusCell(a) {
    var reason = a.status_reason ? String(a.status_reason).replace(/_/g, ' ') : '';
    if (a.status === 'active') {
      return [h('span', { class: 'badge ok', text: 'active' }), a.at_expired ? h('span', { class: 'sub', text: 'access token expired: refreshed on use' }) : null];
    }
    if (a.status === 'cooling_down') {
      var left = a.cooldown_until ? new Date(a.cooldown_until).getTime() - Date.now() : 0;
      return [h('span', { class: 'badge warn', text: 'cooling down' }),
        h('span', { class: 'sub', text: fmtDuration(left) + ' left' + (a.cooldown_reason ? ' · ' + a.cooldown_reason : '') })];
    }
    return [h('span', { class: 'badge bad', text: a.status || 'unknown' }), reason ? h('span', { class: 'sub', text: reason }) : null,
      a.status_at ? h('span', { class: 'sub', text: 'since ' + fmtTime(a.status_at) }) : null];
  }

  function limitText(n) { return n === -1 || n === null || n === undefined ? '∞' : String(n); }

  async function accountsPage() {
    page('Accounts');
    var listPanel = h('section', { 'aria-label': 'Account list' });
    var addPanel = addAccountForm(function () { accountsState.cursors = ['']; accountsState.page = 0; loadAccounts(listPanel); });
    addPanel.id = 'add-account';
    addPanel.hidden = true;
    var addToggle = h('button', { type: 'button', class: 'primary', text: 'New account', 'aria-expanded': 'false', 'aria-controls': 'add-account' });
    var showAdd = function (show) {
      addPanel.hidden = !show;
      addToggle.setAttribute('aria-expanded', show ? 'true' : 'false');
      if (show) addPanel.querySelector('textarea').focus();
    };
    addToggle.addEventListener('click', function () { showAdd(addPanel.hidden); });
    listPanel.showAdd = showAdd;
    var fileInput = h('input', { type: 'file', accept: '.json,application/json', class: 'sr-only', id: 'import-file' });
    fileInput.addEventListener('change', function () { importFile(fileInput, listPanel); });
    var pageSize = h('select', { id: 'page-size', 'aria-label': 'Accounts per page' },
      [25, 50, 100, 200, 500].map(function (n) { return h('option', { value: String(n), text: n + ' per page' }); }));
    pageSize.value = String(accountsState.limit);
    pageSize.addEventListener('change', function () {
      accountsState.limit = Number(pageSize.value); accountsState.cursors = ['']; accountsState.page = 0;
      loadAccounts(listPanel);
    });
    var toolbar = h('div', { class: 'toolbar' }, addToggle,
      h('label', { class: 'button', for: 'import-file', tabindex: '0', role: 'button', id: 'import-label',
        onkeydown: function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fileInput.click(); } } }, 'Import from file…'),
      fileInput,
      h('button', { type: 'button', text: 'Export to file', onclick: exportAccounts }),
      h('button', { type: 'button', text: 'Reload', onclick: function () { loadAccounts(listPanel); } }),
      h('span', { class: 'spacer' }), pageSize);
    main.append(toolbar, addPanel, listPanel);
    await loadAccounts(listPanel);
  }

  function addAccountForm(onAdded) {
    var st = h('textarea', { name: 'st', required: true, rows: '2', autocomplete: 'off', spellcheck: 'false' });
    var remark = h('input', { type: 'text', name: 'remark' });
    var img = checkbox('Serves images', true);
    var vid = checkbox('Serves videos', true);
    var imgC = h('input', { type: 'number', min: '-1', step: '1', value: '-1' });
    var vidC = h('input', { type: 'number', min: '-1', step: '1', value: '-1' });
    var err = h('p', { class: 'error', role: 'alert' });
    var submit = h('button', { type: 'submit', class: 'primary', text: 'Add account' });
    var stField = field('Session token', st, 'The __Secure-next-auth.session-token cookie of labs.google.');
    var form = h('form', { class: 'panel', 'aria-labelledby': 'add-title' },
      h('h2', { id: 'add-title', text: 'Add an account' }),
      stField,
      h('div', { class: 'row' }, field('Remark', remark), field('Image slots (-1: no limit)', imgC), field('Video slots (-1: no limit)', vidC)),
      h('div', { class: 'row' }, img.el, vid.el), err, submit);
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      err.textContent = '';
      stField.setError(st.value.trim() ? '' : 'Paste the session token.');
      if (!st.value.trim()) return;
      submit.disabled = true;
      submit.textContent = 'Adding…';
      try {
        var r = await api('POST', 'api/tokens', {
          st: st.value.trim(), remark: remark.value || undefined,
          image_enabled: img.box.checked, video_enabled: vid.box.checked,
          image_concurrency: Number(imgC.value), video_concurrency: Number(vidC.value),
        });
        toast('Added ' + (r.token && r.token.email || 'the account') + '.');
        st.value = ''; remark.value = '';
        onAdded();
      } catch (ex) {
        err.textContent = failText(ex);
      } finally {
        submit.disabled = false;
        submit.textContent = 'Add account';
      }
    });
    return form;
  }

  async function loadAccounts(panel) {
    var st = accountsState;
    panel.replaceChildren(h('p', { class: 'hint', text: 'Loading…' }));
    var data;
    try {
      data = await api('GET', 'api/tokens?limit=' + st.limit + '&cursor=' + encodeURIComponent(st.cursors[st.page] || ''));
    } catch (ex) {
      panel.replaceChildren(h('p', { class: 'error', text: failText(ex) }));
      return;
    }
    var rows = data.tokens || [];
    var reload = function () { loadAccounts(panel); };
    // An empty pool: the form to fill it, at once.
    if (!rows.length && st.page === 0 && panel.showAdd) panel.showAdd(true);
    var columns = [
      { label: 'Account', cell: function (a) {
        return [h('strong', { text: a.email || a.id }), a.name ? h('span', { class: 'sub', text: a.name }) : null,
          a.remark ? h('span', { class: 'sub', text: a.remark }) : null];
      } },
      { label: 'Status', cell: statusCell },
      { label: 'Tier', cell: function (a) { return a.tier || '–'; } },
      { label: 'Credits', num: true, cell: function (a) { return fmtNum(a.credits); } },
      { label: 'Slots in use', cell: function (a) {
        var f = a.in_flight || {};
        return [h('span', { text: 'image ' + (f.image || 0) + '/' + limitText(a.image_concurrency) + (a.image_enabled ? '' : ' (off)') }),
          h('span', { class: 'sub', text: 'video ' + (f.video || 0) + '/' + limitText(a.video_concurrency) + (a.video_enabled ? '' : ' (off)') })];
      } },
      { label: 'Errors', num: true, cell: function (a) {
        return [String(a.consecutive_error_count || 0), h('span', { class: 'sub', text: (a.error_count || 0) + ' in all' })];
      } },
      { label: 'Last use', cell: function (a) { return [ago(a.last_used_at), h('span', { class: 'sub', text: (a.use_count || 0) + ' uses' })]; } },
      { label: 'Actions', cell: function (a) { return accountActions(a, reload); } },
    ];
    var pager = h('div', { class: 'pager' },
      h('button', { type: 'button', text: '← Previous', disabled: st.page === 0, onclick: function () { st.page -= 1; reload(); } }),
      h('span', { text: 'Page ' + (st.page + 1) + ' · ' + rows.length + ' accounts shown' }),
      h('button', { type: 'button', text: 'Next →', disabled: !data.next_cursor, onclick: function () {
        st.cursors[st.page + 1] = data.next_cursor; st.page += 1; reload();
      } }));
    panel.replaceChildren(table(columns, rows, { caption: 'Accounts', empty: 'No accounts yet: add one above.' }), pager);
  }

  function accountActions(a, reload) {
    var who = a.email || a.id;
    var act = async function (label, method, path, done) {
      try {
        await api(method, path);
        toast(done + ' ' + who + '.');
      } catch (ex) {
        toast(label + ' ' + who + ': ' + failText(ex), true);
      }
      reload();
    };
    return h('div', { class: 'actions' },
      h('button', { type: 'button', text: 'Edit', 'aria-label': 'Edit ' + who, onclick: function () { editAccount(a, reload); } }),
      a.is_active
        ? h('button', { type: 'button', text: 'Disable', 'aria-label': 'Disable ' + who, onclick: function () { act('Disabling', 'POST', 'api/tokens/' + a.id + '/disable', 'Disabled'); } })
        : h('button', { type: 'button', text: 'Enable', 'aria-label': 'Enable ' + who, onclick: function () { act('Enabling', 'POST', 'api/tokens/' + a.id + '/enable', 'Enabled'); } }),
      h('button', { type: 'button', text: 'Refresh', 'aria-label': 'Refresh ' + who, onclick: function () { act('Refreshing', 'POST', 'api/tokens/' + a.id + '/refresh', 'Refreshed'); } }),
      h('button', { type: 'button', class: 'danger', text: 'Delete', 'aria-label': 'Delete ' + who, onclick: function () {
        if (confirm('Delete ' + who + '? Its Flow projects stay upstream.')) act('Deleting', 'DELETE', 'api/tokens/' + a.id, 'Deleted');
      } }));
  }

  function editAccount(a, reload) {
    var who = a.email || a.id;
    var remark = h('input', { type: 'text', value: a.remark || '' });
    var img = checkbox('Serves images', a.image_enabled);
    var vid = checkbox('Serves videos', a.video_enabled);
    var imgC = h('input', { type: 'number', min: '-1', step: '1', value: String(a.image_concurrency) });
    var vidC = h('input', { type: 'number', min: '-1', step: '1', value: String(a.video_concurrency) });
    var captcha = h('input', { type: 'text', value: a.captcha_method || '', placeholder: 'the global CAPTCHA_METHOD' });
    var route = h('input', { type: 'text', value: a.extension_route_key || '' });
    var proxy = h('input', { type: 'text', value: a.proxy_url || '', placeholder: 'the global PROXY_URL', autocomplete: 'off' });
    var st = h('textarea', { rows: '2', autocomplete: 'off', spellcheck: 'false', placeholder: 'unchanged' });
    var err = h('p', { class: 'error', role: 'alert' });
    var dialog = h('dialog', { 'aria-labelledby': 'edit-title' });
    var form = h('form', { method: 'dialog' },
      h('h2', { id: 'edit-title', text: 'Edit ' + who }),
      field('Remark', remark),
      h('div', { class: 'row' }, img.el, vid.el),
      h('div', { class: 'row' }, field('Image slots (-1: no limit)', imgC), field('Video slots (-1: no limit)', vidC)),
      field('Captcha route', captcha, 'A method chain such as yescaptcha or remote_browser,yescaptcha; empty: the global one.'),
      field('Extension route key', route),
      field('Proxy', proxy, 'Shown masked; leave it to keep the current one, empty it to use the global one.'),
      field('New session token', st, 'Replaces the account\'s session token and re-activates it.'),
      err,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Save' }),
        h('button', { type: 'button', text: 'Cancel', onclick: function () { dialog.close(); } })));
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      var body = {
        remark: remark.value, image_enabled: img.box.checked, video_enabled: vid.box.checked,
        image_concurrency: Number(imgC.value), video_concurrency: Number(vidC.value),
        captcha_method: captcha.value.trim(), extension_route_key: route.value.trim(),
      };
      if (proxy.value !== (a.proxy_url || '')) body.proxy_url = proxy.value.trim();
      if (st.value.trim()) body.st = st.value.trim();
      try {
        await api('PUT', 'api/tokens/' + a.id, body);
        dialog.close();
        toast('Saved ' + who + '.');
        reload();
      } catch (ex) {
        err.textContent = failText(ex);
      }
    });
    dialog.append(form);
    dialog.addEventListener('close', function () { dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
    remark.focus();
  }

  async function importFile(input, listPanel) {
    var file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    var items;
    try {
      var parsed = JSON.parse(await file.text());
      items = Array.isArray(parsed) ? parsed : parsed.tokens;
      if (!Array.isArray(items)) throw new Error('expected a list of accounts');
    } catch (e) {
      toast('That file is not an account export: ' + e.message, true);
      return;
    }
    try {
      var r = await api('POST', 'api/tokens/import', { tokens: items });
      while (r && r.status === 'running' && r.import_id) {
        toast('Importing… ' + r.done + '/' + r.total);
        await sleep(1000);
        r = await api('GET', 'api/tokens/import/' + encodeURIComponent(r.import_id));
      }
      var errors = Array.isArray(r.errors) ? r.errors.length : 0;
      toast('Import finished: ' + (r.added || 0) + ' added, ' + (r.updated || 0) + ' updated, ' + errors + ' failed.', errors > 0);
    } catch (ex) {
      toast('Import failed: ' + failText(ex), true);
    }
    accountsState.cursors = ['']; accountsState.page = 0;
    loadAccounts(listPanel);
  }

  async function exportAccounts() {
    try {
      var items = await api('GET', 'api/tokens/export');
      var day = new Date().toISOString().slice(0, 10);
      download('flow2api-accounts-' + day + '.json', JSON.stringify(items, null, 2));
      toast('Exported ' + items.length + ' accounts (the file holds their session tokens).');
    } catch (ex) {
      toast('Export failed: ' + failText(ex), true);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Settings
  // ---------------------------------------------------------------------------------------

  // The check the server makes, ahead of it, so a mistake shows as it is typed.
  function checkSetting(input, raw) {
    var v = raw.trim();
    if (v === '') return 'Enter a value, or reset it to the default.';
    var k = input.kind;
    if (k === 'integer' || k === 'seconds') {
      var n = Number(v);
      if (!isFinite(n)) return 'Enter a number.';
      if (k === 'integer' && !Number.isInteger(n)) return 'Enter a whole number.';
      if (n < input.min || n > input.max) return 'Between ' + input.min + ' and ' + input.max + '.';
    } else if (k === 'flag') {
      if (!/^(true|false|1|0|yes|no|on|off)$/i.test(v)) return 'true or false.';
    } else if (k === 'one_of') {
      var lower = v.toLowerCase();
      if (!input.choices.some(function (c) { return c.toLowerCase() === lower; })) return 'One of: ' + input.choices.join(', ') + '.';
    } else if (k === 'list_of') {
      var words = v.split(',').map(function (w) { return w.trim().toLowerCase(); });
      var allowed = input.choices.map(function (c) { return c.toLowerCase(); });
      var bad = words.filter(function (w) { return allowed.indexOf(w) < 0; });
      if (bad.length) return 'Not known: ' + bad.join(', ') + '. Choose from: ' + input.choices.join(', ') + '.';
      if (new Set(words).size !== words.length) return 'Each method at most once.';
    } else if (k === 'url') {
      if (!/^https?:\/\/\S+$/i.test(v)) return 'An http or https URL.';
    } else if (k === 'origins') {
      var badOrigin = v.split(',').map(function (o) { return o.trim(); }).filter(function (o) { return !/^https?:\/\/[^/\s]+$/i.test(o); });
      if (badOrigin.length) return 'Origins such as scheme://host[:port], comma-separated.';
    }
    return '';
  }

  function settingControl(sv) {
    var input = sv.input || { kind: 'text' };
    var value = sv.value === null || sv.value === undefined ? '' : sv.value;
    var id = 'set-' + sv.name;
    if (input.kind === 'flag') {
      var flag = h('select', { id: id },
        h('option', { value: 'true', text: 'true' }), h('option', { value: 'false', text: 'false' }));
      flag.value = /^(true|1|yes|on)$/i.test(value) ? 'true' : 'false';
      return flag;
    }
    if (input.kind === 'one_of') {
      var sel = h('select', { id: id }, input.choices.map(function (c) { return h('option', { value: c, text: c }); }));
      var match = input.choices.filter(function (c) { return c.toLowerCase() === value.toLowerCase(); })[0];
      sel.value = match || input.choices[0];
      return sel;
    }
    if (input.kind === 'integer' || input.kind === 'seconds') {
      return h('input', { id: id, type: 'number', value: value, min: String(input.min), max: String(input.max),
        step: input.kind === 'integer' ? '1' : 'any', inputmode: input.kind === 'integer' ? 'numeric' : 'decimal' });
    }
    if (sv.secret) {
      return h('input', { id: id, type: input.kind === 'proxy' ? 'text' : 'password', value: '', autocomplete: 'off',
        placeholder: value ? value + ' (unchanged)' : 'not set' });
    }
    return h('input', { id: id, type: input.kind === 'url' ? 'url' : 'text', value: value, spellcheck: 'false' });
  }

  async function settingsPage() {
    page('Settings');
    var body = h('form', { class: 'panel settings', 'aria-label': 'Runtime settings', onsubmit: function (e) { e.preventDefault(); } },
      h('p', { class: 'hint', text: 'Loading…' }));
    var filter = h('input', { type: 'search', id: 'settings-filter', placeholder: 'name or words' });
    main.append(h('p', { class: 'hint', text: 'Runtime settings: a change reaches every process and isolate within a second, no restart. Values set here override the environment; reset goes back to it.' }),
      h('div', { class: 'toolbar' }, field('Filter settings', filter)), body);
    var data;
    try {
      data = await api('GET', 'api/settings');
    } catch (ex) {
      body.replaceChildren(h('p', { class: 'error', text: failText(ex) }));
      return;
    }
    var version = data.version;
    var rows = data.settings.map(function (sv) {
      var control = settingControl(sv);
      var wrapper = field(sv.name, control, sv.about + ' Accepts ' + sv.accepts + '.');
      wrapper.querySelector('label').className = 'name';
      var sourceText = sv.source === 'override' ? 'set here' : sv.source === 'environment' ? 'from the environment' : 'default';
      var source = h('span', { class: 'badge source', text: sourceText });
      var save = h('button', { type: 'button', class: 'primary', text: 'Save', 'aria-label': 'Save ' + sv.name });
      var reset = h('button', { type: 'button', text: 'Reset', 'aria-label': 'Reset ' + sv.name, disabled: sv.source !== 'override' });
      var validate = function () {
        if (sv.secret && control.value === '') { wrapper.setError(''); return ''; }
        var msg = checkSetting(sv.input || { kind: 'text' }, control.value);
        wrapper.setError(msg);
        return msg;
      };
      control.addEventListener('input', validate);
      var patch = async function (value) {
        try {
          var r = await api('PATCH', 'api/settings', { values: (function () { var o = {}; o[sv.name] = value; return o; })(), version: version });
          version = r.version;
          toast(value === null ? sv.name + ' is back to its default.' : 'Saved ' + sv.name + '.');
          source.textContent = value === null ? 'default' : 'set here';
          reset.disabled = value === null;
          if (sv.secret) { control.value = ''; control.placeholder = 'set (unchanged)'; }
          if (value === null) settingsPage();
        } catch (ex) {
          if (ex.status === 409) {
            wrapper.setError('Changed elsewhere meanwhile; the page has been reloaded.');
            settingsPage();
          } else {
            wrapper.setError(failText(ex));
          }
        }
      };
      save.addEventListener('click', function () {
        if (sv.secret && control.value === '') { wrapper.setError('Type a new value first.'); return; }
        if (!validate()) patch(control.value.trim());
      });
      control.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); save.click(); } });
      reset.addEventListener('click', function () { patch(null); });
      var row = h('div', { class: 'setting', 'data-name': sv.name, 'data-words': (sv.name + ' ' + sv.about).toLowerCase() },
        wrapper, h('div', { class: 'actions' }, source, save, reset));
      return row;
    });
    body.replaceChildren.apply(body, rows);
    filter.addEventListener('input', function () {
      var q = filter.value.trim().toLowerCase();
      rows.forEach(function (r) { r.hidden = q !== '' && r.getAttribute('data-words').indexOf(q) < 0; });
    });
  }

  // ---------------------------------------------------------------------------------------
  // Request log
  // ---------------------------------------------------------------------------------------

  var logState = { filters: {}, cursors: [''], page: 0 };

  function statusBadge(code) {
    var cls = code >= 500 ? 'bad' : code >= 400 ? 'warn' : code >= 200 && code < 300 ? 'ok' : '';
    return h('span', { class: 'badge ' + cls, text: code === null || code === undefined ? '–' : String(code) });
  }

  async function logsPage() {
    page('Request log');
    var f = logState.filters;
    var status = h('select', { id: 'log-status' }, ['', '2xx', '4xx', '5xx'].map(function (v) {
      return h('option', { value: v, text: v || 'any' });
    }));
    status.value = f.status || '';
    var model = h('input', { type: 'text', id: 'log-model', value: f.model || '' });
    var account = h('input', { type: 'text', id: 'log-account', value: f.account || '', placeholder: 'account id' });
    var key = h('input', { type: 'text', id: 'log-key', value: f.key || '', placeholder: 'root or a key id' });
    var operation = h('select', { id: 'log-operation' }, ['', 'generate_image', 'generate_video', 'extend_video', 'generate_unknown'].map(function (v) {
      return h('option', { value: v, text: v || 'any' });
    }));
    operation.value = f.operation || '';
    var since = h('input', { type: 'datetime-local', id: 'log-since', value: f.sinceLocal || '' });
    var until = h('input', { type: 'datetime-local', id: 'log-until', value: f.untilLocal || '' });
    var list = h('section', { 'aria-label': 'Log entries' });
    var form = h('form', { class: 'panel', 'aria-label': 'Filters' },
      h('div', { class: 'row' }, field('Status', status), field('Operation', operation), field('Model', model),
        field('Account', account), field('Key', key), field('Since', since), field('Until', until)),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Apply filters' }),
        h('button', { type: 'button', text: 'Clear filters', onclick: function () { logState.filters = {}; logState.cursors = ['']; logState.page = 0; logsPage(); } }),
        h('button', { type: 'button', class: 'danger', text: 'Delete every entry', onclick: async function () {
          if (!confirm('Delete every request log entry?')) return;
          try { var r = await api('DELETE', 'api/logs'); toast('Deleted ' + fmtNum(r.deleted) + ' entries.'); }
          catch (ex) { toast(failText(ex), true); }
          loadLogs(list);
        } })));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var iso = function (v) { return v ? new Date(v).toISOString() : ''; };
      logState.filters = { status: status.value, model: model.value.trim(), account: account.value.trim(), key: key.value.trim(),
        operation: operation.value, since: iso(since.value), until: iso(until.value), sinceLocal: since.value, untilLocal: until.value };
      logState.cursors = ['']; logState.page = 0;
      loadLogs(list);
    });
    main.append(form, list);
    await loadLogs(list);
  }

  async function loadLogs(panel) {
    var st = logState;
    var q = ['limit=50', 'cursor=' + encodeURIComponent(st.cursors[st.page] || '')];
    ['status', 'model', 'account', 'key', 'operation', 'since', 'until'].forEach(function (k) {
      if (st.filters[k]) q.push(k + '=' + encodeURIComponent(st.filters[k]));
    });
    panel.replaceChildren(h('p', { class: 'hint', text: 'Loading…' }));
    var data;
    try {
      data = await api('GET', 'api/logs?' + q.join('&'));
    } catch (ex) {
      panel.replaceChildren(h('p', { class: ex.status === 404 ? 'hint' : 'error',
        text: ex.status === 404 ? 'This gateway keeps no request log.' : failText(ex) }));
      return;
    }
    var rows = Array.isArray(data) ? data : (data.logs || []);
    var open = function (r) { location.hash = '#/logs/' + encodeURIComponent(r.id); };
    var columns = [
      { label: 'Time', cell: function (r) { return h('a', { href: '#/logs/' + encodeURIComponent(r.id), text: fmtTime(r.created_at) }); } },
      { label: 'Operation', cell: function (r) { return r.operation || '–'; } },
      { label: 'Model', cell: function (r) { return r.model || '–'; } },
      { label: 'Account', cell: function (r) { return r.token_email || r.token_id || '–'; } },
      { label: 'Key', cell: function (r) { return r.key || '–'; } },
      { label: 'Status', cell: function (r) { return [statusBadge(r.status_code), r.error_summary ? h('span', { class: 'sub', text: r.error_summary }) : null]; } },
      { label: 'Duration', num: true, cell: function (r) { return typeof r.duration === 'number' ? r.duration.toFixed(2) + ' s' : '–'; } },
      { label: 'Progress', num: true, cell: function (r) { return r.progress === null || r.progress === undefined ? '–' : r.progress + '%'; } },
    ];
    var reload = function () { loadLogs(panel); };
    var pager = h('div', { class: 'pager' },
      h('button', { type: 'button', text: '← Newer', disabled: st.page === 0, onclick: function () { st.page -= 1; reload(); } }),
      h('span', { text: 'Page ' + (st.page + 1) }),
      h('button', { type: 'button', text: 'Older →', disabled: !data.next_cursor, onclick: function () {
        st.cursors[st.page + 1] = data.next_cursor; st.page += 1; reload();
      } }));
    panel.replaceChildren(table(columns, rows, { onRow: open, caption: 'Request log', empty: 'No requests match.' }), pager);
  }

  function pretty(text) {
    if (text === null || text === undefined || text === '') return '–';
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return String(text); }
  }

  async function logDetailPage(id) {
    page('Request ' + id);
    var back = h('p', null, h('a', { href: '#/logs', text: '← Back to the log' }));
    main.append(back);
    var r;
    try {
      r = await api('GET', 'api/logs/' + encodeURIComponent(id));
    } catch (ex) {
      main.append(h('p', { class: 'error', text: failText(ex) }));
      return;
    }
    var rows = [['Time', fmtTime(r.created_at)], ['Updated', fmtTime(r.updated_at)], ['Operation', r.operation], ['Model', r.model],
      ['Account', (r.token_email || '–') + (r.token_id ? ' (' + r.token_id + ')' : '')], ['Key', r.key],
      ['Status', statusBadge(r.status_code)], ['Status text', r.status_text], ['Duration', typeof r.duration === 'number' ? r.duration.toFixed(2) + ' s' : '–'],
      ['Progress', r.progress === null || r.progress === undefined ? '–' : r.progress + '%'], ['Error', r.error_summary]];
    main.append(h('section', { class: 'panel', 'aria-label': 'Summary' },
      h('dl', { class: 'detail' }, rows.map(function (p) { return [h('dt', { text: p[0] }), h('dd', null, p[1] === null || p[1] === undefined || p[1] === '' ? '–' : p[1])]; }))),
    h('h2', { text: 'Request' }), h('pre', { class: 'body', id: 'log-request', text: pretty(r.request_body) }),
    h('h2', { text: 'Response' }), h('pre', { class: 'body', id: 'log-response', text: pretty(r.response_body) }));
  }

  // ---------------------------------------------------------------------------------------
  // Stats
  // ---------------------------------------------------------------------------------------

  var SERIES = ['images', 'videos', 'errors'];

  // Grouped bars, one group per bucket; drawn as SVG (no chart library).
  // Drawn at the width it is shown at, so its text keeps its size.
  function barChart(buckets, label, title, width) {
    var W = Math.max(300, Math.round(width || 720)), H = 220, left = 36, bottom = 26, topPad = 10;
    var max = 1;
    buckets.forEach(function (b) { SERIES.forEach(function (k) { max = Math.max(max, b[k] || 0); }); });
    // Whole-number ticks, about four of them: 1, 2, 3 or 5 times a power of ten apart.
    var mag = Math.pow(10, Math.floor(Math.log10(max / 4 || 1)));
    var step = [1, 2, 3, 5, 10].map(function (m) { return m * mag; }).filter(function (v) { return v >= max / 4; })[0];
    step = Math.max(1, Math.ceil(step));
    var ticks = Math.max(1, Math.ceil(max / step));
    var nice = ticks * step;
    var plotW = W - left - 8, plotH = H - bottom - topPad;
    var groupW = plotW / Math.max(1, buckets.length);
    var barW = Math.max(1, (groupW - 4) / SERIES.length);
    var total = { images: 0, videos: 0, errors: 0 };
    var svg = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    for (var i = 0; i <= ticks; i += 1) {
      var y = topPad + plotH - plotH * i / ticks;
      svg.append(s('line', { class: 'grid', x1: left, x2: W - 8, y1: y, y2: y }),
        s('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, String(step * i)));
    }
    var every = Math.ceil(buckets.length / Math.max(2, Math.floor(plotW / 56)));
    buckets.forEach(function (b, gi) {
      var x0 = left + gi * groupW + 2;
      SERIES.forEach(function (k, si) {
        var v = b[k] || 0;
        total[k] += v;
        var bh = plotH * v / nice;
        svg.append(s('rect', { class: 's-' + k, x: x0 + si * barW, y: topPad + plotH - bh, width: Math.max(1, barW - 1), height: bh },
          s('title', {}, label(b) + ': ' + v + ' ' + k)));
      });
      if (gi % every === 0) svg.append(s('text', { x: x0 + groupW / 2 - 2, y: H - 8, 'text-anchor': 'middle' }, label(b)));
    });
    svg.setAttribute('aria-label', title + ': ' + total.images + ' images, ' + total.videos + ' videos, ' + total.errors + ' errors');
    return svg;
  }

  function legend() {
    return h('div', { class: 'legend', 'aria-hidden': 'true' }, SERIES.map(function (k) {
      return h('span', null, h('i', { class: 's-' + k }), k);
    }));
  }

  async function statsPage() {
    page('Stats');
    var cards = h('div', { class: 'cards' });
    var charts = h('div');
    var perAccount = h('section', { 'aria-labelledby': 'per-account' });
    main.append(cards, charts, perAccount);
    try {
      var st = await api('GET', 'api/stats');
      var card = function (label, value) { return h('div', { class: 'card' }, h('div', { class: 'value', text: fmtNum(value) }), h('div', { class: 'label', text: label })); };
      cards.append(card('Accounts', st.total_tokens), card('Active accounts', st.active_tokens),
        card('Images today', st.today_images), card('Videos today', st.today_videos), card('Errors today', st.today_errors),
        card('Images in all', st.total_images), card('Videos in all', st.total_videos), card('Errors in all', st.total_errors));
    } catch (ex) {
      cards.append(h('p', { class: 'error', text: failText(ex) }));
    }
    var ranges = [['24h', 'Last 24 hours (hourly)', function (b) { return new Date(b.start).getHours() + 'h'; }],
      ['7d', 'Last 7 days (daily)', function (b) { var d = new Date(b.start); return (d.getMonth() + 1) + '/' + d.getDate(); }]];
    for (var i = 0; i < ranges.length; i += 1) {
      var r = ranges[i];
      var panel = h('section', { class: 'panel', 'aria-label': r[1] }, h('h2', { text: r[1] }));
      charts.append(panel);
      try {
        var series = await api('GET', 'api/stats/series?range=' + r[0]);
        panel.append(legend(), barChart(series.buckets || [], r[2], r[1], panel.clientWidth - 36));
      } catch (ex) {
        panel.append(h('p', { class: 'hint', text: ex.status === 404 ? 'Not available on this gateway.' : failText(ex) }));
      }
    }
    perAccount.append(h('h2', { id: 'per-account', text: 'Per account' }));
    try {
      var rows = await api('GET', 'api/stats/accounts');
      var n = function (k) { return { label: k.replace(/_/g, ' '), num: true, cell: function (a) { return fmtNum(a[k]); } }; };
      perAccount.append(table([{ label: 'Account', cell: function (a) { return a.email || a.token_id; } },
        n('today_images'), n('today_videos'), n('today_errors'), n('total_images'), n('total_videos'), n('total_errors')], rows || [],
      { caption: 'Per account', empty: 'No account has served a request yet.' }));
    } catch (ex) {
      perAccount.append(h('p', { class: 'hint', text: ex.status === 404 ? 'Not available on this gateway.' : failText(ex) }));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Playground
  // ---------------------------------------------------------------------------------------

  var playState = { models: null, kind: 'image', model: '', prompt: '' };

  function isVideoModel(id) { return /^veo/i.test(id); }

  function sameOrigin(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  }

  async function playgroundPage() {
    page('Playground');
    if (!playState.models) {
      try {
        var list = await api('GET', 'v1/models');
        playState.models = (list.data || []).map(function (m) { return m.id; });
      } catch (ex) {
        main.append(h('p', { class: 'error', text: failText(ex) }));
        return;
      }
    }
    var kind = h('select', { id: 'play-kind' }, h('option', { value: 'image', text: 'Image' }), h('option', { value: 'video', text: 'Video' }));
    kind.value = playState.kind;
    var model = h('select', { id: 'play-model' });
    var fillModels = function () {
      var wanted = playState.models.filter(function (id) { return isVideoModel(id) === (kind.value === 'video'); });
      model.replaceChildren.apply(model, wanted.map(function (id) { return h('option', { value: id, text: id }); }));
      var preferred = kind.value === 'video' ? 'veo_3_1_t2v_fast_landscape' : 'gemini-3.1-flash-image-landscape';
      model.value = wanted.indexOf(playState.model) >= 0 ? playState.model : wanted.indexOf(preferred) >= 0 ? preferred : wanted[0] || '';
    };
    fillModels();
    kind.addEventListener('change', function () { playState.kind = kind.value; fillModels(); });
    model.addEventListener('change', function () { playState.model = model.value; });
    var prompt = h('textarea', { id: 'play-prompt', rows: '3', required: true, value: playState.prompt });
    prompt.addEventListener('input', function () { playState.prompt = prompt.value; });
    var files = h('input', { type: 'file', id: 'play-images', accept: 'image/png,image/jpeg,image/webp,image/gif', multiple: true });
    var thumbs = h('div', { class: 'thumbs', 'aria-live': 'polite' });
    var attached = [];
    files.addEventListener('change', async function () {
      attached = await Promise.all(Array.prototype.map.call(files.files, readDataUrl));
      thumbs.replaceChildren.apply(thumbs, attached.map(function (u, i) { return h('img', { src: u, alt: 'attached image ' + (i + 1) }); }));
    });
    var promptField = field('Prompt', prompt);
    var go = h('button', { type: 'submit', class: 'primary', id: 'play-go', text: 'Generate' });
    var status = h('p', { class: 'hint', id: 'play-status', role: 'status' });
    var bar = h('progress', { max: '100', value: '0', 'aria-label': 'Progress', hidden: true });
    var log = h('pre', { class: 'progress-log', id: 'play-progress', 'aria-label': 'Progress messages' });
    var result = h('div', { class: 'result', id: 'play-result' });
    var form = h('form', { class: 'panel' },
      h('div', { class: 'row' }, withClass(field('Kind', kind), 'narrow'), withClass(field('Model', model), 'wide')),
      promptField, field('Reference images (optional)', files), thumbs,
      h('div', { class: 'actions' }, go));
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      promptField.setError(prompt.value.trim() ? '' : 'Write a prompt.');
      if (!prompt.value.trim()) return;
      go.disabled = true;
      log.textContent = '';
      result.replaceChildren();
      status.textContent = 'Working…';
      try {
        if (kind.value === 'video') await runVideo(model.value, prompt.value, attached, log, bar, status, result);
        else await runImage(model.value, prompt.value, attached, log, status, result);
      } catch (ex) {
        status.textContent = '';
        result.replaceChildren(h('p', { class: 'error', role: 'alert', text: failText(ex) }));
      } finally {
        go.disabled = false;
      }
    });
    main.append(h('p', { class: 'hint', text: 'Calls the API with your admin session (as the root key, which never reaches this page).' }),
      form, h('section', { class: 'panel', 'aria-label': 'Progress and result' }, h('h2', { text: 'Progress' }), status, bar, log, result));
  }

  function readDataUrl(file) {
    return new Promise(function (resolve, reject) {
      var r = new FileReader();
      r.onload = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
      r.readAsDataURL(file);
    });
  }

  // Only web addresses become links or images (never a javascript: or data: one from an answer).
  function webUrl(url) {
    try { return /^https?:$/.test(new URL(url, location.href).protocol); } catch (e) { return false; }
  }

  function showImage(url, result) {
    if (!webUrl(url)) throw new ApiFail(0, 'The answer holds no usable image address.');
    if (sameOrigin(url)) {
      result.append(h('img', { src: url, alt: 'Generated image', id: 'play-image' }),
        h('p', null, h('a', { href: url, target: '_blank', rel: 'noopener', text: 'Open the image' })));
    } else {
      // The console loads nothing from another origin; MEDIA_CACHE serves results from here.
      result.append(h('p', { class: 'hint', text: 'The result is on another origin, which this page does not load. Open it, or turn MEDIA_CACHE on (Settings) to keep results on this gateway.' }),
        h('p', null, h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: 'Open the image' })));
    }
  }

  async function runImage(model, prompt, images, log, status, result) {
    var content = images.length
      ? [{ type: 'text', text: prompt }].concat(images.map(function (u) { return { type: 'image_url', image_url: { url: u } }; }))
      : prompt;
    var resp = await send('POST', 'v1/chat/completions', { model: model, stream: true, messages: [{ role: 'user', content: content }] });
    if (!resp.ok) {
      var text = await resp.text();
      var data; try { data = JSON.parse(text); } catch (e) { data = text; }
      throw new ApiFail(resp.status, messageOf(data) || 'HTTP ' + resp.status);
    }
    var answer = '';
    var failure = null;
    await readEvents(resp, function (payload) {
      if (payload === '[DONE]') return;
      var ev; try { ev = JSON.parse(payload); } catch (e) { return; }
      if (ev.error) { failure = ev.error.message || 'The generation failed.'; return; }
      var delta = ev.choices && ev.choices[0] && ev.choices[0].delta || {};
      if (delta.reasoning_content) { log.textContent += delta.reasoning_content; log.scrollTop = log.scrollHeight; }
      if (delta.content) answer += delta.content;
    });
    if (failure) throw new ApiFail(0, failure);
    var m = /!\[[^\]]*\]\((\S+?)\)/.exec(answer);
    if (!m) throw new ApiFail(0, 'No image in the answer: ' + answer.slice(0, 200));
    status.textContent = 'Done.';
    showImage(m[1], result);
  }

  // Server-sent events from a fetch body: calls `onData` with each event's data.
  async function readEvents(resp, onData) {
    var reader = resp.body.getReader();
    var decoder = new TextDecoder();
    var buf = '';
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, '\n');
      var at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        var block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        var data = block.split('\n').filter(function (l) { return l.slice(0, 5) === 'data:'; })
          .map(function (l) { return l.slice(5).replace(/^ /, ''); }).join('\n');
        if (data) onData(data);
      }
    }
  }

  async function runVideo(model, prompt, images, log, bar, status, result) {
    var body = { model: model, prompt: prompt };
    if (images.length) body.input_reference = images.map(function (u) { return { image_url: u }; });
    var job = await api('POST', 'v1/videos', body);
    bar.hidden = false;
    var seen = '';
    for (;;) {
      bar.value = job.progress || 0;
      var line = job.status + ' ' + (job.progress || 0) + '%';
      if (line !== seen) { log.textContent += line + '\n'; seen = line; }
      status.textContent = 'Video ' + job.id + ': ' + job.status;
      if (job.status === 'completed') break;
      if (job.status === 'failed') throw new ApiFail(0, job.error && job.error.message || 'The video failed.');
      await sleep(1500);
      job = await api('GET', 'v1/videos/' + encodeURIComponent(job.id));
    }
    var resp = await send('GET', 'v1/videos/' + encodeURIComponent(job.id) + '/content');
    if (!resp.ok) throw new ApiFail(resp.status, 'The video could not be fetched (HTTP ' + resp.status + ').');
    var blob = await resp.blob();
    var url = URL.createObjectURL(blob);
    status.textContent = 'Done.';
    result.append(h('video', { src: url, controls: true, id: 'play-video', 'aria-label': 'Generated video' }),
      h('p', null, h('a', { href: url, download: job.id + '.mp4', text: 'Download the video (' + (blob.size / 1024).toFixed(1) + ' KiB)' })));
  }

  // ---------------------------------------------------------------------------------------
  // Routing
  // ---------------------------------------------------------------------------------------

  var PAGES = { accounts: accountsPage, settings: settingsPage, logs: logsPage, stats: statsPage, playground: playgroundPage, password: passwordPage };

  function route() {
    var parts = location.hash.replace(/^#\/?/, '').split('/');
    var name = parts[0] || 'accounts';
    if (!token() || name === 'login') {
      if (token()) { location.hash = '#/accounts'; return; }
      loginPage();
      return;
    }
    top.hidden = false;
    nav.classList.remove('open');
    navToggle.setAttribute('aria-expanded', 'false');
    if (!PAGES[name]) name = 'accounts';
    Array.prototype.forEach.call(nav.querySelectorAll('a'), function (a) {
      if (a.getAttribute('data-page') === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    var run = name === 'logs' && parts[1] ? logDetailPage(decodeURIComponent(parts[1])) : PAGES[name]();
    Promise.resolve(run).catch(function (ex) {
      if (!(ex instanceof ApiFail && ex.status === 401)) toast(failText(ex), true);
    });
    var heading = main.querySelector('h1');
    if (heading && document.activeElement && document.activeElement.closest && !main.contains(document.activeElement)) heading.focus();
  }

  navToggle.addEventListener('click', function () {
    var open = nav.classList.toggle('open');
    navToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  });
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  // Another tab logged in or out.
  window.addEventListener('storage', function (e) { if (e.key === TOKEN_KEY) route(); });
  route();
})();
