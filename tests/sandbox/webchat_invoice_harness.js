// Runs the web chat's script (sandbox/telegram/webchat/webchat.js) in Node against a minimal DOM and a fake
// control API, then prints what the invoice cards showed as JSON. Used by test_telegram_payments.py.
'use strict';

const fs = require('node:fs');
const vm = require('node:vm');

const scriptPath = process.argv[2];
const USER = 1001;

class ClassList {
  constructor() { this.items = new Set(); }
  add(...names) { names.forEach((n) => n && this.items.add(n)); }
  remove(...names) { names.forEach((n) => this.items.delete(n)); }
  contains(name) { return this.items.has(name); }
  toggle(name, force) {
    const on = force === undefined ? !this.items.has(name) : force;
    if (on) this.items.add(name); else this.items.delete(name);
    return on;
  }
}

class DomNode {}
DomNode.TEXT_NODE = 3;
DomNode.ELEMENT_NODE = 1;

class TextNode extends DomNode {
  constructor(text) { super(); this.nodeType = 3; this.text = String(text); this.parentNode = null; }
  get textContent() { return this.text; }
}

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

class Element extends DomNode {
  constructor(tag) {
    super();
    this.nodeType = 1;
    this.tagName = String(tag).toUpperCase();
    this.childNodes = [];
    this.parentNode = null;
    this.attrs = new Map();
    this.dataset = {};
    this.classList = new ClassList();
    this.style = {};
    this.listeners = {};
    this.hidden = false;
    this.disabled = false;
    this.value = '';
    this.open = false;
  }
  set className(value) { this.classList = new ClassList(); String(value).split(/\s+/).forEach((c) => this.classList.add(c)); }
  get className() { return [...this.classList.items].join(' '); }
  setAttribute(name, value) {
    this.attrs.set(name, String(value));
    if (name.startsWith('data-')) this.dataset[camel(name.slice(5))] = String(value);
    if (name === 'hidden') this.hidden = true;
  }
  getAttribute(name) {
    if (name.startsWith('data-')) return this.dataset[camel(name.slice(5))] ?? null;
    return this.attrs.has(name) ? this.attrs.get(name) : null;
  }
  removeAttribute(name) { this.attrs.delete(name); }
  get attributes() { return [...this.attrs.keys()].map((name) => ({ name })); }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  removeEventListener() {}
  dispatch(type) { for (const fn of this.listeners[type] || []) fn({ target: this, preventDefault() {} }); }
  click() { this.dispatch('click'); }
  focus() {} blur() {} showModal() { this.open = true; } close() { this.open = false; }
  append(...nodes) {
    for (const node of nodes) {
      const child = node instanceof Element || node instanceof TextNode ? node : new TextNode(node);
      if (child.parentNode) child.parentNode.removeChild(child);
      child.parentNode = this;
      this.childNodes.push(child);
    }
  }
  removeChild(child) {
    this.childNodes = this.childNodes.filter((c) => c !== child);
    child.parentNode = null;
  }
  replaceChildren(...nodes) {
    for (const child of this.childNodes) child.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }
  replaceWith(node) {
    const parent = this.parentNode;
    if (!parent) return;
    const index = parent.childNodes.indexOf(this);
    if (node.parentNode) node.parentNode.removeChild(node);
    parent.childNodes[index] = node;
    node.parentNode = parent;
    this.parentNode = null;
  }
  remove() { if (this.parentNode) this.parentNode.removeChild(this); }
  get isConnected() {
    let node = this;
    while (node.parentNode) node = node.parentNode;
    return node === documentRoot;
  }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(''); }
  set textContent(value) { this.replaceChildren(); if (value !== '' && value !== undefined) this.append(String(value)); }
  get children() { return this.childNodes.filter((c) => c instanceof Element); }
  all(predicate, found = []) {
    for (const child of this.children) {
      if (predicate(child)) found.push(child);
      child.all(predicate, found);
    }
    return found;
  }
  querySelector(selector) { return this.all(matcher(selector))[0] || null; }
  querySelectorAll(selector) { return this.all(matcher(selector)); }
  closest() { return null; }
}

function matcher(selector) {
  const byAttr = /^\[data-([\w-]+)="([^"]*)"\]$/.exec(selector);
  if (byAttr) return (el) => el.dataset[camel(byAttr[1])] === byAttr[2];
  throw new Error(`unsupported selector ${selector}`);
}

const documentRoot = new Element('html');
const byTestId = new Map();
const document = {
  createElement: (tag) => new Element(tag),
  createElementNS: (_, tag) => new Element(tag),
  querySelector(selector) {
    if (!byTestId.has(selector)) {
      const el = new Element('div');
      const testId = /data-testid="([^"]+)"/.exec(selector);
      if (testId) el.dataset.testid = testId[1];
      documentRoot.append(el);
      byTestId.set(selector, el);
    }
    return byTestId.get(selector);
  },
  title: '',
};

// ------------------------------------------------------------------------------------- fake control API

const calls = [];
const pending = []; // chat events waiting for the next long poll
let seq = 0;
const event = (type, payload) => ({ seq: ++seq, type, ...payload });
const bot = { id: 7000000001, is_bot: true, first_name: 'Shop' };
const user = { id: USER, is_bot: false, first_name: 'Alice' };
const chat = { id: USER, type: 'private', first_name: 'Alice' };
const starsInvoice = {
  message_id: 5, from: bot, chat, date: 1700000000,
  invoice: { title: 'Pro plan', description: '30 days of Pro signals', start_parameter: '', currency: 'XTR', total_amount: 100 },
};
const fiatInvoice = {
  message_id: 6, from: bot, chat, date: 1700000000,
  invoice: { title: 'Signals', description: 'A month', start_parameter: '', currency: 'USD', total_amount: 1299 },
  reply_markup: { inline_keyboard: [[{ text: 'Pay now', pay: true }], [{ text: 'Details', callback_data: 'd' }]] },
};
const history = [event('message', { message: starsInvoice }), event('message', { message: fiatInvoice })];
const payResults = [
  { status: 'paid', currency: 'XTR', total_amount: 100, telegram_payment_charge_id: 'stx1' },
  { status: 'failed', reason: 'declined', error_message: 'Sold out', currency: 'USD', total_amount: 1299 },
];

const respond = (body, status = 200) => ({ ok: status < 400, status, statusText: 'OK', json: async () => body });

async function fetchStub(url, init = {}) {
  const parsed = new URL(url, 'http://emulator');
  const path = parsed.pathname.replace('/sandbox/api', '');
  const body = init.body ? JSON.parse(init.body) : null;
  calls.push({ path, body, query: Object.fromEntries(parsed.searchParams) });
  if (path === '/bots') return respond([{ id: bot.id, username: 'shop_bot', first_name: 'Shop' }]);
  if (path === '/users') return respond(user);
  if (path === '/commands') return respond({ commands: [], menu_button: { type: 'commands' } });
  if (path === '/pay') {
    const result = payResults.shift();
    if (result.status === 'paid') {
      pending.push(event('message', {
        message: { message_id: 7, from: user, chat, date: 1700000001, successful_payment: { currency: 'XTR', total_amount: 100, invoice_payload: 'pro', telegram_payment_charge_id: 'stx1', provider_payment_charge_id: '' } },
      }));
      pending.push(event('payment', { status: 'paid', invoice_message_id: 5, currency: 'XTR', total_amount: 100 }));
    } else {
      pending.push(event('payment', { status: 'failed', reason: 'declined', error_message: 'Sold out', invoice_message_id: 6 }));
    }
    return respond(result);
  }
  if (path === '/chat') {
    const since = Number(parsed.searchParams.get('since'));
    if (since === 0) return respond({ seq, events: history, keyboard: null, bot_id: bot.id });
    for (let i = 0; i < 50 && !pending.length; i += 1) await new Promise((r) => setTimeout(r, 10));
    const events = pending.splice(0);
    return respond({ seq: events.length ? events[events.length - 1].seq : since, events, keyboard: null, bot_id: bot.id });
  }
  return respond({ ok: false, error: `unknown ${path}` }, 404);
}

const storage = new Map();
const context = {
  document,
  window: { addEventListener() {}, AudioContext: undefined },
  location: { search: `?user_id=${USER}&poll_timeout=1` },
  localStorage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, String(v)) },
  navigator: {},
  fetch: fetchStub,
  Node: DomNode,
  console, setTimeout, clearTimeout, setInterval, clearInterval, Promise, URL, URLSearchParams,
  AbortController, Intl, Date, Math, JSON, Map, Set, Number, String, Array, Object, Error, FormData,
};
context.window.location = context.location;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (el) => (el ? el.textContent : null);

async function main() {
  vm.createContext(context);
  vm.runInContext(fs.readFileSync(scriptPath, 'utf8'), context, { filename: 'webchat.js' });
  await sleep(150);
  const list = document.querySelector('[data-testid="message-list"]');
  const card = (id) => list.querySelector(`[data-message-id="${id}"]`);
  const out = { before: {}, after: {} };
  for (const id of [5, 6]) {
    const node = card(id);
    out.before[id] = {
      title: text(node.querySelector('[data-testid="invoice-title"]')),
      description: text(node.querySelector('[data-testid="invoice-description"]')),
      amount: text(node.querySelector('[data-testid="invoice-amount"]')),
      payButtons: node.querySelectorAll('[data-testid="invoice-pay-button"]').map(text),
      statusHidden: node.querySelector('[data-testid="invoice-status"]').hidden,
    };
  }
  card(5).querySelector('[data-testid="invoice-pay-button"]').click();
  await sleep(200);
  card(6).querySelector('[data-testid="invoice-pay-button"]').click();
  await sleep(200);
  for (const id of [5, 6]) {
    const status = card(id).querySelector('[data-testid="invoice-status"]');
    out.after[id] = { status: text(status), hidden: status.hidden, state: status.dataset.status };
  }
  out.service = list.querySelectorAll('[data-testid="payment-service"]').map(text);
  out.toasts = document.querySelector('[data-testid="toasts"]').children.map(text);
  out.alert = text(document.querySelector('[data-testid="alert-text"]'));
  out.payCalls = calls.filter((c) => c.path === '/pay').map((c) => c.body);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
