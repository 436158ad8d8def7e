/*
 * Web chat of the local Telegram emulator.
 *
 * A person plays a Telegram user: the page talks to the emulator's control API
 * (/sandbox/api/...), sends messages, presses inline buttons, uploads voice, and
 * follows the chat through the long-polled event stream GET /sandbox/api/chat.
 *
 * Plain browser JavaScript, no build step and no dependencies.
 */
(() => {
  'use strict';

  const API = '/sandbox/api';
  // Long-poll duration asked of the server; ?poll_timeout=N overrides it (tests use
  // short polls so that stopping the emulator does not wait for an open poll).
  const POLL_TIMEOUT_S = Math.min(60, Math.max(1,
    parseInt(new URLSearchParams(location.search).get('poll_timeout') || '', 10) || 25));
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const CHAT_ACTION_MS = 5000;        // Telegram shows a chat action for about 5 s
  const TOAST_MS = 3500;
  const STORAGE_KEY = 'webchat.settings.v1';
  const LANGUAGES = ['en', 'ru', 'es'];

  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

  const el = {
    app: document.querySelector('.app'),
    header: document.querySelector('.header'),
    chatsToggle: byTestId('chats-toggle'),
    chatList: byTestId('chat-list'),
    chatListItems: byTestId('chat-list-items'),
    readOnlyNote: byTestId('read-only-note'),
    botName: byTestId('bot-name'),
    botSelect: byTestId('bot-select'),
    avatar: byTestId('bot-avatar'),
    connDot: byTestId('connection-status'),
    statusText: byTestId('bot-username'),
    chatAction: byTestId('chat-action'),
    userToggle: byTestId('user-panel-toggle'),
    userPanel: byTestId('user-panel'),
    userId: byTestId('user-id-input'),
    firstName: byTestId('first-name-input'),
    language: byTestId('language-select'),
    scroller: byTestId('messages'),
    list: byTestId('message-list'),
    emptyHint: byTestId('empty-hint'),
    jumpBottom: byTestId('jump-bottom'),
    replyKeyboard: byTestId('reply-keyboard'),
    commandHint: byTestId('command-hint'),
    composer: byTestId('composer'),
    input: byTestId('message-input'),
    attach: byTestId('attach-button'),
    fileInput: byTestId('file-input'),
    mic: byTestId('mic-button'),
    recordingBar: byTestId('recording-indicator'),
    recordingTime: byTestId('recording-time'),
    recordCancel: byTestId('record-cancel-button'),
    toasts: byTestId('toasts'),
    alertDialog: byTestId('alert-dialog'),
    alertText: byTestId('alert-text'),
  };

  const state = {
    userId: 1001,
    firstName: 'Alice',
    lang: 'en',
    bots: [],
    botId: null,
    chatId: null,             // null: the private chat with the bot; else a group or channel id
    chat: null,               // that group or channel as GET /chat describes it (title, can_post, ...)
    lastSeq: 0,
    generation: 0,            // bumped on every user switch; stale poll loops stop
    pollAbort: null,
    messages: new Map(),      // message_id -> rendered .msg element
    lastDay: null,            // day key of the last appended message (for separators)
    stick: true,              // keep the view scrolled to the bottom
    commands: [],
    commandsFetchedAt: 0,
    hintIndex: -1,            // highlighted command in the "/" hint, -1 = none
    pendingButtons: new Set(),
    invoiceStatus: new Map(), // invoice message_id -> { status, text } from "payment" events
    chatActionTimer: null,
    recording: null,
  };

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  /** Calls the control API; JSON in and out (FormData bodies are sent as multipart). */
  async function api(path, { method = 'GET', query, body, signal, timeoutMs = 15000 } = {}) {
    let url = API + path;
    if (query) url += '?' + new URLSearchParams(query).toString();
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    if (signal) {
      if (signal.aborted) ctrl.abort();
      else signal.addEventListener('abort', () => ctrl.abort(), { once: true });
    }
    const init = { method, signal: ctrl.signal, headers: {} };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    try {
      const resp = await fetch(url, init);
      let data = null;
      try { data = await resp.json(); } catch { /* not JSON */ }
      if (!resp.ok || (data && data.ok === false)) {
        const why = (data && (data.description || data.error || data.message)) || resp.statusText;
        throw new ApiError(`${resp.status} ${why}`.trim(), resp.status);
      }
      return data;
    } finally {
      clearTimeout(timer);
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key.startsWith('data')) node.setAttribute(key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function formatSize(bytes) {
    if (typeof bytes !== 'number' || !isFinite(bytes)) return '';
    if (bytes < 1024) return `${bytes} B`;
    const units = ['KB', 'MB', 'GB'];
    let n = bytes / 1024;
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'long', day: 'numeric', year: 'numeric' });

  // ------------------------------------------------------ safe HTML rendering

  // The emulator renders bot texts to HTML from their entities; it is meant to be
  // safe already, but it is still filtered through this allow-list before use
  // (defence in depth: the page never trusts markup it did not check).
  const ALLOWED_TAGS = {
    B: [], STRONG: [], I: [], EM: [], U: [], INS: [], S: [], STRIKE: [], DEL: [],
    CODE: ['class'], PRE: ['class'], A: ['href'], BLOCKQUOTE: ['expandable'],
    'TG-SPOILER': [], SPAN: ['class'], 'TG-EMOJI': ['emoji-id'], BR: [],
  };
  const DROP_WITH_CONTENT = new Set(['SCRIPT', 'STYLE', 'TEMPLATE', 'IFRAME', 'OBJECT', 'EMBED', 'NOSCRIPT']);
  const SAFE_URL = /^(https?|tg|ton|tonsite|ftp|mailto):/i;   // as the emulator's renderer

  function cleanTree(parent) {
    for (const child of [...parent.childNodes]) {
      if (child.nodeType === Node.TEXT_NODE) continue;
      if (child.nodeType !== Node.ELEMENT_NODE) { child.remove(); continue; }
      const tag = child.tagName;
      if (DROP_WITH_CONTENT.has(tag)) { child.remove(); continue; }
      const allowedAttrs = ALLOWED_TAGS[tag];
      cleanTree(child);
      if (!allowedAttrs) {          // unknown element: keep its text, drop the tag
        child.replaceWith(...child.childNodes);
        continue;
      }
      for (const attr of [...child.attributes]) {
        if (!allowedAttrs.includes(attr.name)) child.removeAttribute(attr.name);
      }
      if (tag === 'A') {
        const href = (child.getAttribute('href') || '').trim();
        if (SAFE_URL.test(href)) {
          child.setAttribute('target', '_blank');
          child.setAttribute('rel', 'noopener noreferrer');
        } else {
          child.removeAttribute('href');
        }
      } else if (tag === 'SPAN' && child.getAttribute('class') !== 'tg-spoiler') {
        child.removeAttribute('class');
      } else if ((tag === 'CODE' || tag === 'PRE') && !/^language-[\w+#.-]+$/.test(child.getAttribute('class') || '')) {
        child.removeAttribute('class');
      }
    }
  }

  /** Puts filtered HTML into target. A <template> parses inertly: nothing runs or loads. */
  function setSafeHtml(target, html) {
    const tpl = document.createElement('template');
    tpl.innerHTML = html;
    cleanTree(tpl.content);
    target.replaceChildren(tpl.content);
  }

  // -------------------------------------------------------------- settings

  function loadSettings() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}');
      if (Number.isInteger(saved.userId) && saved.userId > 0) state.userId = saved.userId;
      if (typeof saved.firstName === 'string' && saved.firstName.trim()) state.firstName = saved.firstName;
      if (LANGUAGES.includes(saved.lang)) state.lang = saved.lang;
    } catch { /* corrupt storage: keep defaults */ }
    // ?user_id=&first_name=&lang= override (handy for bookmarks and tests)
    const params = new URLSearchParams(location.search);
    const qUser = parseInt(params.get('user_id') || '', 10);
    if (qUser > 0) state.userId = qUser;
    if (params.get('first_name')) state.firstName = params.get('first_name');
    if (LANGUAGES.includes(params.get('lang'))) state.lang = params.get('lang');
  }

  function saveSettings() {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify({
        userId: state.userId, firstName: state.firstName, lang: state.lang,
      }));
    } catch { /* storage disabled */ }
  }

  function fillUserPanel() {
    el.userId.value = String(state.userId);
    el.firstName.value = state.firstName;
    el.language.value = state.lang;
  }

  /** Registers (or updates) the user with the emulator. */
  async function ensureUser() {
    try {
      await api('/users', {
        method: 'POST',
        body: { user_id: state.userId, first_name: state.firstName, language_code: state.lang },
      });
    } catch (err) {
      console.warn('could not register user', err);
    }
  }

  /** Reads the user panel; a new user id reloads the chat of that user. */
  function applyUserPanel() {
    const id = parseInt(el.userId.value, 10);
    if (!(id > 0)) { el.userId.value = String(state.userId); return; }
    const name = el.firstName.value.trim() || 'User';
    const lang = LANGUAGES.includes(el.language.value) ? el.language.value : 'en';
    const userChanged = id !== state.userId;
    const langChanged = lang !== state.lang;
    state.firstName = name;
    state.lang = lang;
    state.userId = id;
    saveSettings();
    if (userChanged) {
      openChat(null);     // the new user's chat with the bot (he may not be in the group shown)
    } else {
      ensureUser();
    }
    if (langChanged || userChanged) loadCommands(true);
  }

  // ------------------------------------------------------------------ bots

  async function loadBots() {
    // The bot may register after the page was opened: retry until one shows up.
    for (let delay = 1000; ; delay = Math.min(delay * 2, 8000)) {
      try {
        const bots = await api('/bots');
        if (Array.isArray(bots) && bots.length) {
          state.bots = bots;
          if (!bots.some((b) => b.id === state.botId)) state.botId = bots[0].id;
          renderBotHeader();
          loadCommands(true);
          return;
        }
        el.botName.textContent = 'No bot yet';
      } catch (err) {
        el.botName.textContent = 'Emulator unreachable';
      }
      await sleep(delay);
    }
  }

  function currentBot() {
    return state.bots.find((b) => b.id === state.botId) || null;
  }

  function renderBotHeader() {
    el.app.dataset.chatType = state.chatId === null ? 'private' : ((state.chat && state.chat.chat.type) || 'channel');
    if (state.chatId !== null) {
      const title = (state.chat && state.chat.chat.title) || 'Chat';
      el.botName.textContent = title;
      el.avatar.textContent = title.trim().charAt(0).toUpperCase() || 'C';
      document.title = `${title} · web chat`;
      el.botSelect.hidden = true;
      updateStatusText();
      return;
    }
    const bot = currentBot();
    const name = bot ? (bot.first_name || bot.username || `bot ${bot.id}`) : 'Bot';
    el.botName.textContent = name;
    el.avatar.textContent = name.trim().charAt(0).toUpperCase() || 'B';
    document.title = `${name} · web chat`;
    updateStatusText();
    // A bot selector appears only when the emulator hosts several bots.
    el.botSelect.hidden = state.bots.length < 2;
    if (state.bots.length >= 2) {
      el.botSelect.replaceChildren(...state.bots.map((b) =>
        h('option', { value: String(b.id), text: b.first_name || b.username || String(b.id) })));
      el.botSelect.value = String(state.botId);
    }
  }

  function updateStatusText() {
    const bot = currentBot();
    const state_ = el.connDot.dataset.state;
    if (state_ === 'offline') el.statusText.textContent = 'reconnecting…';
    else if (state_ === 'connecting') el.statusText.textContent = 'connecting…';
    else if (state.chatId !== null) el.statusText.textContent = chatSubtitle(state.chat);
    else el.statusText.textContent = bot && bot.username ? `@${bot.username}` : 'bot';
  }

  function chatSubtitle(info) {
    if (!info) return '';
    const n = info.member_count || 0;
    const what = info.chat.type === 'channel' ? (n === 1 ? 'subscriber' : 'subscribers') : (n === 1 ? 'member' : 'members');
    const kind = info.chat.type === 'channel' ? 'channel' : 'group';
    return `${kind} · ${n} ${what}`;
  }

  function setConnection(stateName, detail) {
    el.connDot.dataset.state = stateName;
    el.connDot.title = detail ? `${stateName}: ${detail}` : stateName;
    updateStatusText();
  }

  // -------------------------------------------------------------- commands

  /**
   * Picks the command list that Telegram would show this user in a private chat.
   * bot_state.commands is keyed "scope/lang" (lang may be empty); chat scopes beat
   * all_private_chats, which beats default; within a scope the user's language wins.
   */
  function pickCommands(commands) {
    if (Array.isArray(commands)) return commands;
    if (!commands || typeof commands !== 'object') return [];
    let best = null;
    for (const [key, list] of Object.entries(commands)) {
      if (!Array.isArray(list) || !list.length) continue;
      const slash = key.lastIndexOf('/');
      const scope = (slash >= 0 ? key.slice(0, slash) : key).toLowerCase();
      const lang = (slash >= 0 ? key.slice(slash + 1) : '').toLowerCase();
      let langRank;
      if (lang === state.lang) langRank = 1;
      else if (lang === '' || lang === '*' || lang === 'default' || lang === 'none') langRank = 0;
      else continue;
      let scopeRank;
      if (scope === `chat:${state.userId}`) scopeRank = 3;
      else if (scope === 'all_private_chats') scopeRank = 2;
      else if (scope === '' || scope === 'default') scopeRank = 1;
      else continue;                       // other chats, group and admin scopes
      const rank = scopeRank * 2 + langRank;
      if (!best || rank > best.rank) best = { rank, list };
    }
    return best ? best.list : [];
  }

  async function loadCommands(force = false) {
    if (state.botId === null) return;
    if (!force && Date.now() - state.commandsFetchedAt < 3000) return;
    state.commandsFetchedAt = Date.now();
    let list = [];
    try {
      // The emulator resolves the user's command menu itself (GET /commands) ...
      const data = await api('/commands', {
        query: { bot_id: state.botId, user_id: state.userId, language_code: state.lang },
      });
      list = (data && data.commands) || [];
    } catch (err) {
      // ... else (an emulator without that endpoint) resolve bot_state's lists here.
      try {
        const data = await api('/bot_state', { query: { bot_id: state.botId } });
        list = pickCommands(data && data.commands);
      } catch { /* no commands */ }
    }
    state.commands = Array.isArray(list) ? list.filter((c) => c && typeof c.command === 'string') : [];
    updateCommandHint();
  }

  function hintMatches() {
    const value = el.input.value;
    if (!value.startsWith('/') || /\s/.test(value)) return [];
    const prefix = value.slice(1).toLowerCase();
    return state.commands.filter((c) => c.command.toLowerCase().startsWith(prefix));
  }

  function updateCommandHint() {
    const matches = hintMatches();
    if (!matches.length) {
      el.commandHint.hidden = true;
      el.commandHint.replaceChildren();
      state.hintIndex = -1;
      return;
    }
    if (state.hintIndex >= matches.length) state.hintIndex = matches.length - 1;
    el.commandHint.replaceChildren(...matches.map((c, i) => h('li', {
      role: 'option',
      class: i === state.hintIndex ? 'active' : '',
      'data-testid': 'command-hint-item',
      'data-command': c.command,
      // mousedown (not click) so the input keeps its focus
      onmousedown: (event) => { event.preventDefault(); chooseCommand(c.command, true); },
    }, h('span', { class: 'cmd', text: '/' + c.command }), h('span', { class: 'desc', text: c.description || '' }))));
    el.commandHint.hidden = false;
  }

  function chooseCommand(command, send) {
    state.hintIndex = -1;
    if (send) {
      el.input.value = '';
      updateCommandHint();
      sendText('/' + command);
    } else {
      el.input.value = '/' + command + ' ';
      updateCommandHint();
    }
    el.input.focus();
  }

  // ------------------------------------------------------------- rendering

  function isFromBot(msg) {
    return senderKind(msg) === 'bot';
  }

  /**
   * 'bot', 'user' (the current user) or 'other' (another user in a group or channel). Channel posts have
   * no `from`: the emulator adds `posted_by`, who really posted them.
   */
  function senderKind(msg) {
    const sender = msg.from || msg.posted_by;
    if (!sender) return 'bot';
    if (sender.is_bot) return 'bot';
    if (sender.id === state.userId) return 'user';
    return state.chatId === null ? 'bot' : 'other';
  }

  function messageText(msg) {
    return msg.text ?? msg.caption ?? '';
  }

  /** The media part of a message (photo, document, voice, ...), or null. */
  function renderMedia(msg) {
    const url = msg.file_url;
    if (Array.isArray(msg.photo) && msg.photo.length) {
      const largest = msg.photo[msg.photo.length - 1];
      const src = url || largest.file_url;
      if (!src) return h('div', { class: 'media-unavailable', text: '🖼 Photo' });
      const img = h('img', {
        class: 'photo', src, alt: 'Photo', 'data-testid': 'message-photo', decoding: 'async',
      });
      if (largest.width && largest.height) {
        img.width = largest.width;
        img.height = largest.height;
        img.style.aspectRatio = `${largest.width} / ${largest.height}`;
        img.style.width = `${Math.min(largest.width, 400)}px`;
        img.style.height = 'auto';
      }
      return h('a', { class: 'photo-link', href: src, target: '_blank', rel: 'noopener noreferrer' }, img);
    }
    if (msg.voice || msg.audio) {
      const media = msg.voice || msg.audio;
      const src = url || media.file_url;
      const label = msg.voice
        ? `Voice message · ${formatDuration(media.duration)}`
        : [media.performer, media.title || media.file_name].filter(Boolean).join(' – ') || `Audio · ${formatDuration(media.duration)}`;
      return h('div', { class: 'voice', 'data-testid': msg.voice ? 'message-voice' : 'message-audio' },
        src ? h('audio', { controls: true, preload: 'metadata', src }) : null,
        h('span', { class: 'voice-label', text: src ? label : `🎤 ${label}` }));
    }
    if (msg.video || msg.video_note || msg.animation) {
      const media = msg.video || msg.video_note || msg.animation;
      const src = url || media.file_url;
      if (!src) return h('div', { class: 'media-unavailable', text: msg.animation ? 'GIF' : '🎬 Video' });
      return h('video', {
        class: 'photo', src, controls: !msg.animation, autoplay: !!msg.animation, loop: !!msg.animation,
        muted: !!msg.animation, playsinline: true, 'data-testid': 'message-video',
      });
    }
    if (msg.sticker) {
      const src = url || msg.sticker.file_url;
      return src
        ? h('img', { class: 'photo', src, alt: msg.sticker.emoji || 'sticker', 'data-testid': 'message-sticker' })
        : h('div', { class: 'media-unavailable', text: msg.sticker.emoji || 'Sticker' });
    }
    if (msg.document) {
      const doc = msg.document;
      const name = doc.file_name || 'document';
      const src = url || doc.file_url;
      const body = [
        h('span', { class: 'doc-icon' }, svgIcon('M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5z')),
        h('span', { class: 'doc-meta' },
          h('div', { class: 'doc-name', 'data-testid': 'document-name', text: name }),
          h('div', { class: 'doc-size', 'data-testid': 'document-size', text: formatSize(doc.file_size) || doc.mime_type || '' })),
      ];
      return src
        ? h('a', { class: 'document', href: src, download: name, target: '_blank', rel: 'noopener', 'data-testid': 'message-document' }, ...body)
        : h('div', { class: 'document', 'data-testid': 'message-document' }, ...body);
    }
    if (msg.location) {
      const { latitude, longitude } = msg.location;
      return h('div', { class: 'media-unavailable', text: `📍 ${latitude}, ${longitude}` });
    }
    if (msg.contact) {
      return h('div', { class: 'media-unavailable', text: `👤 ${msg.contact.first_name || ''} ${msg.contact.phone_number || ''}` });
    }
    return null;
  }

  /** An amount in the smallest units of a currency, as Telegram shows it ("⭐ 100" for Stars). */
  function formatAmount(currency, amount) {
    if (currency === 'XTR') return `⭐ ${amount}`;
    try {
      const fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
      const digits = fmt.resolvedOptions().maximumFractionDigits;
      return fmt.format(amount / 10 ** digits);
    } catch {
      return `${amount} ${currency}`;
    }
  }

  function invoiceStatusText(ev) {
    if (ev.status === 'paid') return 'Paid ✓';
    if (ev.status === 'refunded') return 'Refunded';
    return `Payment failed: ${ev.error_message || 'unknown error'}`;
  }

  /** The card of an invoice message: title, description, amount and a Pay button. */
  function renderInvoice(msg, hasPayButton) {
    const inv = msg.invoice;
    const amount = formatAmount(inv.currency, inv.total_amount);
    const status = state.invoiceStatus.get(msg.message_id);
    const card = h('div', { class: 'invoice', 'data-testid': 'invoice-card', 'data-currency': inv.currency },
      h('div', { class: 'invoice-title', 'data-testid': 'invoice-title', text: inv.title }),
      h('div', { class: 'invoice-description', 'data-testid': 'invoice-description', text: inv.description }),
      h('div', { class: 'invoice-amount', 'data-testid': 'invoice-amount', text: amount }),
      h('div', {
        class: 'invoice-status', 'data-testid': 'invoice-status', 'data-status': status ? status.status : undefined,
        hidden: !status, text: status ? status.text : '',
      }));
    // With its own keyboard the bot's first button is the Pay button; otherwise Telegram draws one.
    if (!hasPayButton) {
      const btn = h('button', {
        type: 'button', class: 'inline-button invoice-pay', 'data-testid': 'invoice-pay-button', text: `Pay ${amount}`,
      });
      btn.addEventListener('click', () => payInvoice(msg.message_id, btn));
      card.append(btn);
    }
    return card;
  }

  /** The service line of a payment (the user's successful_payment / refunded_payment message). */
  function renderPaymentService(msg) {
    const bot = currentBot();
    const botName = bot ? (bot.first_name || bot.username || 'the bot') : 'the bot';
    const paid = msg.successful_payment;
    const info = paid || msg.refunded_payment;
    const amount = formatAmount(info.currency, info.total_amount);
    const text = paid
      ? `You successfully transferred ${amount} to ${botName}`
      : `${amount} refunded by ${botName}`;
    return h('div', {
      class: 'msg service', 'data-testid': 'payment-service', 'data-from': 'service',
      'data-message-id': String(msg.message_id), 'data-charge-id': info.telegram_payment_charge_id,
    }, h('span', { class: 'service-text', text }));
  }

  function svgIcon(path) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    svg.append(p);
    return svg;
  }

  function renderInlineKeyboard(msg, rows) {
    const keyboard = h('div', { class: 'inline-keyboard', 'data-testid': 'inline-keyboard' });
    for (const row of rows) {
      if (!Array.isArray(row) || !row.length) continue;
      const rowEl = h('div', { class: 'kb-row', 'data-testid': 'inline-keyboard-row' });
      for (const button of row) rowEl.append(renderInlineButton(msg, button));
      keyboard.append(rowEl);
    }
    return keyboard;
  }

  function renderInlineButton(msg, button) {
    const text = button.text || '';
    const link = button.url || (button.web_app && button.web_app.url) || (button.login_url && button.login_url.url);
    if (link) {
      const deep = button.url ? deepLinkBot(link) : null;
      return h('a', {
        class: 'inline-button url', href: SAFE_URL.test(link) ? link : undefined, target: '_blank',
        rel: 'noopener noreferrer', 'data-testid': 'inline-button', 'data-url': link, text, title: link,
        'data-deep-link': deep ? 'bot' : undefined,
        // a t.me link to a bot of this emulator opens that bot's chat here, as Telegram's apps do
        onclick: deep ? (event) => { event.preventDefault(); openDeepLink(link); } : undefined,
      });
    }
    if (button.callback_data !== undefined) {
      const btn = h('button', {
        type: 'button', class: 'inline-button', 'data-testid': 'inline-button',
        'data-callback-data': button.callback_data, text,
      });
      btn.addEventListener('click', () => pressButton(msg.message_id, button.callback_data, btn));
      return btn;
    }
    if (button.copy_text && typeof button.copy_text.text === 'string') {
      return h('button', {
        type: 'button', class: 'inline-button', 'data-testid': 'inline-button', text,
        onclick: async () => {
          try { await navigator.clipboard.writeText(button.copy_text.text); showToast('Copied to clipboard'); }
          catch { showToast(button.copy_text.text); }
        },
      });
    }
    if (button.pay && msg.invoice) {
      const btn = h('button', {
        type: 'button', class: 'inline-button invoice-pay', 'data-testid': 'invoice-pay-button', text,
      });
      btn.addEventListener('click', () => payInvoice(msg.message_id, btn));
      return btn;
    }
    // switch_inline_query, callback_game, ...: shown but not emulated
    return h('button', {
      type: 'button', class: 'inline-button', 'data-testid': 'inline-button', text,
      onclick: () => showToast('This button type is not supported by the web chat'),
    });
  }

  /** The bot a t.me / tg://resolve link points to, if it is one of this emulator's bots. */
  function deepLinkBot(link) {
    let name = null;
    try {
      const url = new URL(link);
      if (url.protocol === 'tg:') name = url.searchParams.get('domain');
      else if (/^(www\.)?(t\.me|telegram\.me|telegram\.dog)$/i.test(url.hostname)) name = url.pathname.split('/')[1];
    } catch { return null; }
    if (!name) return null;
    return state.bots.find((b) => (b.username || '').toLowerCase() === name.toLowerCase()) || null;
  }

  function renderMessage(msg) {
    if (msg.successful_payment || msg.refunded_payment) return renderPaymentService(msg);
    const kind = senderKind(msg);
    const fromBot = kind === 'bot';
    const node = h('div', {
      class: 'msg', 'data-testid': 'message', 'data-from': kind,
      'data-message-id': String(msg.message_id), 'data-edited': msg.edit_date ? 'true' : undefined,
    });
    const bubble = h('div', { class: 'bubble' });
    // In a group, whose message it is (channel posts are the channel's: signed in the meta instead).
    if (state.chatId !== null && msg.from && kind !== 'user') {
      const name = [msg.from.first_name, msg.from.last_name].filter(Boolean).join(' ');
      bubble.append(h('div', { class: 'sender-name', 'data-testid': 'message-sender', text: name }));
    }
    if (msg.new_chat_members || msg.left_chat_member) {
      const who = (msg.new_chat_members || [msg.left_chat_member]).map((u) => u.first_name).join(', ');
      return h('div', {
        class: 'msg service', 'data-testid': 'service-message', 'data-from': 'service',
        'data-message-id': String(msg.message_id),
      }, h('span', { class: 'service-text', text: msg.new_chat_members ? `${who} joined` : `${who} left` }));
    }

    if (msg.reply_to_message) {
      const quoted = messageText(msg.reply_to_message) || (msg.reply_to_message.photo ? 'Photo' : 'Message');
      bubble.append(h('div', { class: 'reply-quote', 'data-testid': 'reply-quote', text: quoted }));
    }

    const markup = msg.reply_markup;
    const rows = markup && Array.isArray(markup.inline_keyboard) ? markup.inline_keyboard : [];
    const media = msg.invoice
      ? renderInvoice(msg, !!(rows[0] && rows[0][0] && rows[0][0].pay))
      : renderMedia(msg);
    if (media) {
      bubble.classList.add('has-media');
      bubble.append(media);
    }

    const text = h('div', { class: 'text', 'data-testid': 'message-text' });
    if (fromBot && typeof msg.html === 'string') {
      setSafeHtml(text, msg.html);
    } else {
      text.textContent = messageText(msg);   // the user's own text is never parsed as HTML
    }
    bubble.append(text);

    const meta = h('span', { class: 'meta' });
    if (msg.author_signature) {
      meta.append(h('span', { class: 'signature', 'data-testid': 'message-signature', text: msg.author_signature }));
    }
    if (msg.edit_date) meta.append(h('span', { class: 'edited', 'data-testid': 'message-edited', text: 'edited' }));
    if (msg.date) {
      const date = new Date(msg.date * 1000);
      meta.append(h('time', { 'data-testid': 'message-time', datetime: date.toISOString(), title: date.toLocaleString(), text: timeFormat.format(date) }));
    }
    // The meta sits in the bubble's bottom-right corner; the text ends with an
    // invisible spacer (CSS ::after) so that short messages keep it on one line.
    if (!text.childNodes.length) bubble.classList.add('no-text');
    bubble.append(meta);
    node.append(bubble);

    if (rows.length) node.append(renderInlineKeyboard(msg, rows));
    return node;
  }

  function dayKey(date) {
    return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
  }

  /** Adds a message or replaces the one with the same id (no duplicates). */
  function upsertMessage(msg, { forceScroll = false } = {}) {
    if (!msg || msg.message_id === undefined) return;
    const node = renderMessage(msg);
    const existing = state.messages.get(msg.message_id);
    if (existing && existing.isConnected) {
      existing.replaceWith(node);
    } else {
      if (msg.date) {
        const date = new Date(msg.date * 1000);
        const key = dayKey(date);
        if (key !== state.lastDay) {
          state.lastDay = key;
          el.list.append(h('div', { class: 'day-separator', 'data-testid': 'day-separator', text: dayFormat.format(date) }));
        }
      }
      el.list.append(node);
      el.emptyHint.hidden = true;
      if (forceScroll) state.stick = true;
      if (!state.stick) el.jumpBottom.hidden = false;
    }
    state.messages.set(msg.message_id, node);
    // The emulator adds the reply keyboard a message carried as `reply_keyboard`
    // (Message.reply_markup itself only ever holds an inline keyboard).
    if (isFromBot(msg) && state.chatId === null) applyReplyKeyboard(msg.reply_keyboard || msg.reply_markup);
    if (state.stick) scrollToBottom();
  }

  function deleteMessage(messageId) {
    const node = state.messages.get(messageId);
    if (node) node.remove();
    state.messages.delete(messageId);
    if (!state.messages.size) el.emptyHint.hidden = false;
  }

  function clearChat() {
    el.list.replaceChildren(el.emptyHint);
    el.emptyHint.hidden = false;
    state.messages.clear();
    state.lastDay = null;
    state.stick = true;
    el.jumpBottom.hidden = true;
    applyReplyKeyboard({ remove_keyboard: true });
    hideChatAction();
  }

  // ------------------------------------------------------- reply keyboard

  /** ReplyKeyboardMarkup shows buttons above the composer; ReplyKeyboardRemove hides them. */
  function applyReplyKeyboard(markup) {
    if (!markup) return;
    if (markup.remove_keyboard) {
      el.replyKeyboard.hidden = true;
      el.replyKeyboard.replaceChildren();
      el.input.placeholder = 'Message';
      return;
    }
    if (markup.force_reply) {
      el.input.placeholder = markup.input_field_placeholder || 'Reply';
      return;
    }
    if (!Array.isArray(markup.keyboard)) return;
    el.input.placeholder = markup.input_field_placeholder || 'Message';
    const rows = markup.keyboard.map((row) => h('div', { class: 'kb-row' }, ...row.map((button) => {
      const text = typeof button === 'string' ? button : button.text;
      return h('button', {
        type: 'button', class: 'inline-button', 'data-testid': 'reply-keyboard-button', text,
        onclick: () => {
          if (markup.one_time_keyboard) el.replyKeyboard.hidden = true;
          sendText(text);
        },
      });
    })));
    el.replyKeyboard.replaceChildren(...rows);
    el.replyKeyboard.hidden = false;
  }

  // ------------------------------------------------------------- scrolling

  function nearBottom() {
    const s = el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  function scrollToBottom() {
    el.scroller.scrollTop = el.scroller.scrollHeight;
    el.jumpBottom.hidden = true;
  }

  // ------------------------------------------------- toasts, alerts, actions

  function showToast(text, { error = false } = {}) {
    const toast = h('div', { class: error ? 'toast error' : 'toast', 'data-testid': 'toast', role: 'status', text });
    el.toasts.append(toast);
    const ms = Math.min(8000, TOAST_MS + text.length * 30);
    setTimeout(() => {
      toast.classList.add('leaving');
      setTimeout(() => toast.remove(), 350);
    }, ms);
  }

  function showAlert(text) {
    el.alertText.textContent = text;
    if (!el.alertDialog.open) {
      if (typeof el.alertDialog.showModal === 'function') el.alertDialog.showModal();
      else window.alert(text);
    }
  }

  const ACTION_LABELS = {
    typing: 'typing…',
    upload_photo: 'uploading photo…',
    record_video: 'recording video…',
    upload_video: 'uploading video…',
    record_voice: 'recording voice…',
    upload_voice: 'uploading voice…',
    upload_document: 'sending file…',
    choose_sticker: 'choosing a sticker…',
    find_location: 'finding location…',
    record_video_note: 'recording video message…',
    upload_video_note: 'uploading video message…',
  };

  function showChatAction(action) {
    el.chatAction.textContent = ACTION_LABELS[action] || `${String(action).replace(/_/g, ' ')}…`;
    el.chatAction.dataset.action = action;
    el.chatAction.hidden = false;
    clearTimeout(state.chatActionTimer);
    state.chatActionTimer = setTimeout(hideChatAction, CHAT_ACTION_MS);
  }

  function hideChatAction() {
    clearTimeout(state.chatActionTimer);
    el.chatAction.hidden = true;
    delete el.chatAction.dataset.action;
  }

  function clearPendingButtons() {
    for (const btn of state.pendingButtons) btn.classList.remove('pending');
    state.pendingButtons.clear();
  }

  // ---------------------------------------------------------- chat events

  /**
   * Applies one event of the chat stream. `live` is false while the history is
   * replayed on load: past toasts and typing indicators are not shown again.
   */
  function applyEvent(ev, live) {
    switch (ev.type) {
      case 'message':
        if (live && ev.message && isFromBot(ev.message)) hideChatAction();
        upsertMessage(ev.message);
        break;
      case 'edit':
        upsertMessage(ev.message);
        break;
      case 'delete':
        deleteMessage(ev.message_id);
        break;
      case 'chat_action':
        if (live) showChatAction(ev.action);
        break;
      case 'payment':
        applyPaymentEvent(ev);
        break;
      case 'callback_answer':
        clearPendingButtons();
        if (live && ev.text) {
          if (ev.show_alert) showAlert(ev.text);
          else showToast(ev.text);
        }
        break;
      default:
        console.debug('unknown chat event', ev);
    }
  }

  /** A payment was made, refused or refunded: show it on the invoice card. */
  function applyPaymentEvent(ev) {
    if (ev.invoice_message_id === null || ev.invoice_message_id === undefined) return;
    const status = { status: ev.status, text: invoiceStatusText(ev) };
    state.invoiceStatus.set(ev.invoice_message_id, status);
    const node = state.messages.get(ev.invoice_message_id);
    const label = node && node.querySelector('[data-testid="invoice-status"]');
    if (label) {
      label.textContent = status.text;
      label.dataset.status = status.status;
      label.hidden = false;
    }
  }

  function applyBatch(data, live) {
    const events = Array.isArray(data && data.events) ? data.events.slice() : [];
    events.sort((a, b) => a.seq - b.seq);
    for (const ev of events) {
      if (typeof ev.seq !== 'number' || ev.seq <= state.lastSeq) continue;   // already seen
      state.lastSeq = ev.seq;
      try {
        applyEvent(ev, live);
      } catch (err) {
        console.error('could not apply chat event', ev, err);
      }
    }
    if (data && typeof data.seq === 'number' && data.seq > state.lastSeq) state.lastSeq = data.seq;
  }

  function chatQuery(since, timeout) {
    const query = { user_id: state.userId, since, timeout };
    if (state.chatId !== null) {
      query.chat_id = state.chatId;
      return query;
    }
    // Private chats are per (bot, user): with several bots, ask for the chosen one's.
    if (state.botId !== null && state.bots.length > 1) query.bot_id = state.botId;
    return query;
  }

  /**
   * Long-polls the chat of the current user until the user is switched.
   *
   * The first request (since=0, timeout 0) loads the history; later ones wait for
   * news after the last seq seen. Errors back off exponentially, and the first
   * answer after an error reloads the whole history: the emulator may have
   * restarted (its seq counter then starts again) and nothing is missed or doubled.
   */
  async function pollLoop(generation) {
    let delay = BACKOFF_MIN_MS;
    let live = false;          // false: the next answer is a full history load
    while (generation === state.generation) {
      const ctrl = new AbortController();
      state.pollAbort = ctrl;
      try {
        const since = live ? state.lastSeq : 0;
        const data = await api('/chat', {
          query: chatQuery(since, live ? POLL_TIMEOUT_S : 0),
          signal: ctrl.signal,
          timeoutMs: (POLL_TIMEOUT_S + 15) * 1000,
        });
        if (generation !== state.generation) return;
        if (data && data.chat) applyChatInfo(data.chat);
        setConnection('online');
        delay = BACKOFF_MIN_MS;
        if (!live) {
          clearChat();
          state.lastSeq = 0;
        }
        applyBatch(data, live);
        // The history answer also says which reply keyboard is shown now.
        if (!live && data && 'keyboard' in data) applyReplyKeyboard(data.keyboard || { remove_keyboard: true });
        live = true;
      } catch (err) {
        if (generation !== state.generation) return;
        setConnection('offline', err.message);
        live = false;
        await sleep(delay + Math.random() * 250);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
  }

  function switchUser() {
    state.generation += 1;
    if (state.pollAbort) state.pollAbort.abort();
    cancelRecording();
    clearChat();
    state.lastSeq = 0;
    setConnection('connecting');
    fillUserPanel();
    const generation = state.generation;
    ensureUser().finally(() => pollLoop(generation));
  }

  // ------------------------------------------------- groups and channels

  /** The group or channel the view shows changed (title, members, whether the user may post). */
  function applyChatInfo(info) {
    state.chat = info;
    renderBotHeader();
    const canPost = !!info.can_post;
    el.composer.hidden = !canPost;
    el.readOnlyNote.hidden = canPost;
    el.readOnlyNote.textContent = info.chat.type === 'channel'
      ? "Only the channel's admins can post here."
      : 'You cannot write in this group.';
  }

  /** Shows the private chat with a bot (chatId null) or a group or channel. */
  function openChat(chatId, botId) {
    state.chatId = chatId;
    state.chat = null;
    if (botId !== undefined && botId !== null) state.botId = botId;
    el.composer.hidden = false;
    el.readOnlyNote.hidden = true;
    // files and voice go to the bot's private chat only
    el.attach.hidden = chatId !== null;
    el.mic.hidden = chatId !== null || !canRecord;
    closeChatList();
    renderBotHeader();
    if (chatId === null) loadCommands(true);
    switchUser();
  }

  /** A t.me link pressed: a bot's deep link sends /start <payload> in that bot's chat, then shows it. */
  async function openDeepLink(url) {
    try {
      const result = await api('/open_link', {
        method: 'POST', body: { user_id: state.userId, url, language_code: state.lang },
      });
      if (result && result.type === 'bot') openChat(null, result.bot_id);
      else if (result && result.type === 'chat') openChat(result.chat.id);
    } catch (err) {
      showToast(`Could not open the link: ${err.message}`, { error: true });
    }
  }

  async function postInChat(text) {
    try {
      const data = await api('/post', {
        method: 'POST', body: { chat_id: state.chatId, user_id: state.userId, text },
      });
      if (data && data.message) upsertMessage(data.message, { forceScroll: true });
      return true;
    } catch (err) {
      showToast(`Could not post: ${err.message}`, { error: true });
      return false;
    }
  }

  function closeChatList() {
    el.chatList.hidden = true;
    el.chatsToggle.setAttribute('aria-expanded', 'false');
  }

  async function toggleChatList() {
    if (!el.chatList.hidden) { closeChatList(); return; }
    let chats = [];
    try {
      chats = await api('/chats', { query: { user_id: state.userId } });
    } catch (err) {
      showToast(`Could not load the chats: ${err.message}`, { error: true });
    }
    const items = state.bots.map((bot) => chatListItem({
      title: bot.first_name || bot.username || `bot ${bot.id}`,
      sub: bot.username ? `@${bot.username}` : 'bot',
      type: 'private',
      current: state.chatId === null && bot.id === state.botId,
      attrs: { 'data-bot-id': String(bot.id) },
      open: () => openChat(null, bot.id),
    }));
    for (const info of Array.isArray(chats) ? chats : []) {
      items.push(chatListItem({
        title: info.chat.title || String(info.chat.id),
        sub: chatSubtitle(info),
        type: info.chat.type,
        current: state.chatId === info.chat.id,
        attrs: { 'data-chat-id': String(info.chat.id) },
        open: () => openChat(info.chat.id),
      }));
    }
    if (!items.length) items.push(h('div', { class: 'chat-list-empty', text: 'No chats yet' }));
    el.chatListItems.replaceChildren(...items);
    el.chatList.hidden = false;
    el.chatsToggle.setAttribute('aria-expanded', 'true');
  }

  function chatListItem({ title, sub, type, current, attrs, open }) {
    return h('button', {
      type: 'button', class: 'chat-list-item', 'data-testid': 'chat-list-item', 'data-chat-type': type,
      'aria-current': current ? 'true' : undefined, onclick: open, ...attrs,
    },
    h('span', { class: 'avatar', text: title.trim().charAt(0).toUpperCase() || '?' }),
    h('span', { class: 'chat-item-text' },
      h('div', { class: 'chat-item-title', 'data-testid': 'chat-item-title', text: title }),
      h('div', { class: 'chat-item-sub', text: sub })));
  }

  // --------------------------------------------------------- user actions

  async function sendText(text) {
    if (!text.trim()) return false;
    if (state.chatId !== null) return postInChat(text);
    const body = {
      user_id: state.userId, text, language_code: state.lang, first_name: state.firstName,
    };
    if (state.botId !== null) body.bot_id = state.botId;
    try {
      const data = await api('/send', { method: 'POST', body });
      if (data && data.message) upsertMessage(data.message, { forceScroll: true });
      return true;
    } catch (err) {
      showToast(`Could not send: ${err.message}`, { error: true });
      return false;
    }
  }

  async function sendFromInput() {
    const text = el.input.value;
    if (!text.trim()) return;
    el.input.value = '';
    autosize();
    updateCommandHint();
    const ok = await sendText(text);
    if (!ok && !el.input.value) { el.input.value = text; autosize(); }   // keep the text to retry
  }

  async function pressButton(messageId, callbackData, btn) {
    btn.classList.add('pending');
    state.pendingButtons.add(btn);
    setTimeout(() => { btn.classList.remove('pending'); state.pendingButtons.delete(btn); }, 5000);
    const body = { user_id: state.userId, message_id: messageId, callback_data: callbackData };
    if (state.chatId !== null) body.chat_id = state.chatId;
    else if (state.botId !== null) body.bot_id = state.botId;
    try {
      await api('/press', { method: 'POST', body });
    } catch (err) {
      btn.classList.remove('pending');
      state.pendingButtons.delete(btn);
      showToast(`Could not press: ${err.message}`, { error: true });
    }
  }

  /**
   * Pays an invoice: the emulator sends the bot a pre-checkout query and answers once the bot
   * accepted (a successful_payment follows) or refused it, or did not answer in time.
   */
  async function payInvoice(messageId, btn) {
    if (btn.disabled) return;
    btn.disabled = true;
    btn.classList.add('pending');
    const body = { user_id: state.userId, message_id: messageId };
    if (state.botId !== null) body.bot_id = state.botId;
    try {
      const result = await api('/pay', { method: 'POST', body, timeoutMs: 90000 });
      if (result && result.status === 'paid') {
        showToast(`Payment successful: ${formatAmount(result.currency, result.total_amount)}`);
      } else {
        showAlert((result && result.error_message) || 'Payment failed');
      }
    } catch (err) {
      showToast(`Could not pay: ${err.message}`, { error: true });
    } finally {
      btn.disabled = false;
      btn.classList.remove('pending');
    }
  }

  /** Duration in seconds of an audio file: decoded with Web Audio, else from <audio> metadata. */
  async function audioDuration(blob) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) {
      let ctx = null;
      try {
        ctx = new Ctx();
        const buffer = await ctx.decodeAudioData(await blob.arrayBuffer());
        if (isFinite(buffer.duration) && buffer.duration > 0) return buffer.duration;
      } catch { /* undecodable here: try the media element */ }
      finally { if (ctx) ctx.close().catch(() => {}); }
    }
    const url = URL.createObjectURL(blob);
    try {
      return await new Promise((resolve) => {
        const audio = new Audio();
        const done = (value) => { clearTimeout(timer); resolve(value); };
        const timer = setTimeout(() => done(null), 4000);
        audio.preload = 'metadata';
        audio.onloadedmetadata = () => done(isFinite(audio.duration) ? audio.duration : null);
        audio.onerror = () => done(null);
        audio.src = url;
      });
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  function kindForFile(file) {
    const type = file.type || '';
    if (type.startsWith('audio/') || /\.(ogg|oga|opus|mp3|m4a|wav|webm|flac)$/i.test(file.name || '')) return 'voice';
    if (/^image\/(png|jpe?g|webp)$/.test(type)) return 'photo';
    return 'document';
  }

  async function uploadFile(file, kind, duration) {
    const form = new FormData();
    form.append('user_id', String(state.userId));
    form.append('kind', kind);
    form.append('file', file, file.name || `${kind}.bin`);
    if (duration) form.append('duration', String(duration));
    if (file.type) form.append('mime_type', file.type);
    try {
      const data = await api('/upload', { method: 'POST', body: form, timeoutMs: 60000 });
      if (data && data.message) upsertMessage(data.message, { forceScroll: true });
    } catch (err) {
      showToast(`Upload failed: ${err.message}`, { error: true });
    }
  }

  async function onFileChosen() {
    const file = el.fileInput.files && el.fileInput.files[0];
    el.fileInput.value = '';            // choosing the same file again fires change again
    if (!file) return;
    const kind = kindForFile(file);
    let duration = null;
    if (kind === 'voice') {
      const seconds = await audioDuration(file);
      if (seconds) duration = Math.max(1, Math.round(seconds));
    }
    await uploadFile(file, kind, duration);
  }

  // ---------------------------------------------------- voice recording

  const canRecord = !!(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

  function recorderMimeType() {
    const candidates = ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus', 'audio/webm', 'audio/ogg'];
    return candidates.find((t) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t)) || '';
  }

  async function startRecording() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      showToast(`Microphone unavailable: ${err.message || err.name}`, { error: true });
      return;
    }
    const mimeType = recorderMimeType();
    let recorder;
    try {
      recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      showToast(`Cannot record: ${err.message}`, { error: true });
      return;
    }
    const rec = { recorder, stream, chunks: [], started: Date.now(), cancelled: false, timer: null };
    state.recording = rec;
    recorder.addEventListener('dataavailable', (event) => { if (event.data && event.data.size) rec.chunks.push(event.data); });
    recorder.addEventListener('stop', async () => {
      stream.getTracks().forEach((t) => t.stop());
      clearInterval(rec.timer);
      if (rec.cancelled || !rec.chunks.length) return;
      const type = (recorder.mimeType || mimeType || 'audio/webm').split(';')[0];
      const ext = type.includes('ogg') ? 'ogg' : 'webm';
      const blob = new Blob(rec.chunks, { type: recorder.mimeType || type });
      const file = new File([blob], `voice.${ext}`, { type: blob.type });
      // MediaRecorder files often carry no duration header: decode, else use the wall clock.
      const decoded = await audioDuration(blob);
      const seconds = decoded || (Date.now() - rec.started) / 1000;
      await uploadFile(file, 'voice', Math.max(1, Math.round(seconds)));
    });
    recorder.start(250);
    el.mic.classList.add('recording');
    el.mic.setAttribute('aria-pressed', 'true');
    el.recordingBar.hidden = false;
    el.recordingTime.textContent = '0:00';
    rec.timer = setInterval(() => {
      el.recordingTime.textContent = formatDuration((Date.now() - rec.started) / 1000);
    }, 250);
  }

  function stopRecording(cancel) {
    const rec = state.recording;
    if (!rec) return;
    state.recording = null;
    rec.cancelled = cancel;
    el.mic.classList.remove('recording');
    el.mic.removeAttribute('aria-pressed');
    el.recordingBar.hidden = true;
    if (rec.recorder.state !== 'inactive') rec.recorder.stop();
    else rec.stream.getTracks().forEach((t) => t.stop());
  }

  function cancelRecording() { stopRecording(true); }

  // -------------------------------------------------------------- wiring

  function autosize() {
    el.input.style.height = 'auto';
    el.input.style.height = `${Math.min(el.input.scrollHeight, 160)}px`;
  }

  function wire() {
    el.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      sendFromInput();
      el.input.focus();
    });

    el.input.addEventListener('input', () => {
      autosize();
      if (el.input.value.startsWith('/')) loadCommands(false);   // commands may have changed
      state.hintIndex = -1;
      updateCommandHint();
    });

    el.input.addEventListener('keydown', (event) => {
      if (event.isComposing) return;
      const matches = el.commandHint.hidden ? [] : hintMatches();
      if (matches.length && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        state.hintIndex = (state.hintIndex + step + matches.length) % matches.length;
        updateCommandHint();
        return;
      }
      if (matches.length && event.key === 'Tab') {
        event.preventDefault();
        chooseCommand(matches[Math.max(0, state.hintIndex)].command, false);
        return;
      }
      if (event.key === 'Escape') {
        if (state.recording) cancelRecording();
        el.commandHint.hidden = true;
        return;
      }
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        if (matches.length && state.hintIndex >= 0) chooseCommand(matches[state.hintIndex].command, true);
        else sendFromInput();
      }
    });
    el.input.addEventListener('blur', () => { setTimeout(() => { el.commandHint.hidden = true; }, 150); });
    el.input.addEventListener('focus', updateCommandHint);

    el.chatsToggle.addEventListener('click', toggleChatList);
    el.attach.addEventListener('click', () => el.fileInput.click());
    el.fileInput.addEventListener('change', onFileChosen);

    el.mic.hidden = !canRecord;
    el.mic.addEventListener('click', () => {
      if (state.recording) stopRecording(false);
      else startRecording();
    });
    el.recordCancel.addEventListener('click', cancelRecording);

    el.userPanel.addEventListener('submit', (event) => { event.preventDefault(); applyUserPanel(); });
    el.userId.addEventListener('change', applyUserPanel);
    el.firstName.addEventListener('change', applyUserPanel);
    el.language.addEventListener('change', applyUserPanel);
    el.userToggle.addEventListener('click', () => {
      const open = el.header.classList.toggle('panel-open');
      el.userToggle.setAttribute('aria-expanded', String(open));
    });

    el.botSelect.addEventListener('change', () => {
      state.botId = Number(el.botSelect.value);
      state.chatId = null;
      state.chat = null;
      renderBotHeader();
      loadCommands(true);
      switchUser();        // each bot has its own private chat with the user
    });

    el.scroller.addEventListener('scroll', () => {
      state.stick = nearBottom();
      if (state.stick) el.jumpBottom.hidden = true;
    }, { passive: true });
    el.jumpBottom.addEventListener('click', () => { state.stick = true; scrollToBottom(); });
    // Content that grows later (images loading, edits) keeps the view pinned to the bottom.
    if (window.ResizeObserver) {
      const observer = new ResizeObserver(() => { if (state.stick) scrollToBottom(); });
      observer.observe(el.list);
      observer.observe(el.scroller);   // the composer grew (recording bar, keyboard, textarea)
    }

    // Spoilers reveal on click.
    el.list.addEventListener('click', (event) => {
      const spoiler = event.target.closest('tg-spoiler, .tg-spoiler');
      if (spoiler) { spoiler.classList.toggle('revealed'); return; }
      // Expandable blockquotes open and close on click (unless a link was clicked).
      const quote = event.target.closest('blockquote[expandable]');
      if (quote && !event.target.closest('a')) quote.classList.toggle('expanded');
    });

    // The other tab (or window) changed the user: follow it.
    window.addEventListener('storage', (event) => {
      if (event.key !== STORAGE_KEY) return;
      const before = state.userId;
      loadSettings();
      fillUserPanel();
      if (state.userId !== before) openChat(null);
    });
  }

  function main() {
    loadSettings();
    fillUserPanel();
    wire();
    loadBots();
    switchUser();
    el.input.focus();
  }

  main();
})();
