// tractor.js: the JavaScript guest helper, a thin layer over the
// `tractor:actor@0.1.0` imports, for components built with ComponentizeJS 0.23
// by build.mjs beside this file (apps import it as 'tractor').
//
//   import * as tractor from 'tractor';
//   export const main = tractor.fallible(() => {
//     tractor.openNursery((n) => {
//       const p = n.startActor('calc', 'leaf');
//       console.log(p.run('add', 2, 3));     // 5
//       p.cancelActor();
//     });
//   });
//
// Values cross actors as CBOR (cborg): call arguments are an array
// (positional). Records are plain objects (the host accepts kebab-case and
// snake_case keys), enums and flags strings, options null/value,
// result<T, E> {ok: v} / {err: e}. Integers decoded from CBOR are Numbers
// (BigInt beyond 2^53), but ComponentizeJS passes s64/u64 parameters of your
// own exports as BigInt and traps unless such results are BigInt too.
//
// How ComponentizeJS (jco's bindgen) maps `result<T, error>`, which is why
// `fallible` and `call` below exist:
//   * imports return T, or throw a ComponentError whose `.payload` is the error;
//   * an export returns T; a thrown value with an own `payload` property
//     becomes err(payload); a thrown Error without one TRAPS the instance.
//
// Resources (nursery, portal, call, context, stream, cancel-scope) are not
// garbage-collected into the host: each is dropped explicitly here, because a
// live handle keeps host state alive (a call handle even keeps the remote call
// running).

import * as rt from 'tractor:actor/runtime@0.1.0';
import * as identity from 'tractor:actor/identity@0.1.0';
import { log as hostLog } from 'tractor:actor/log@0.1.0';
import * as discovery from 'tractor:actor/discovery@0.1.0';
import { poll } from 'wasi:io/poll@0.2.12';
import { encode as cborEncode, decode as cborDecode, Token, Type } from 'cborg';

const dispose = Symbol.dispose || Symbol.for('dispose');
const drop = (r) => { try { r?.[dispose]?.(); } catch (_) { /* already dropped */ } };

// ------------------------------------------------------------------ CBOR

// cborg: plain CBOR with no extensions, pure JavaScript and dependency-free
// (cbor-x's optional native addon breaks `npm ci` from a lock file).
// `undefined` (an absent option field, say) is sent as null, which is what
// the host and the other languages read as `none`.
const encodeOptions = { typeEncoders: { undefined: () => [new Token(Type.null, null)] } };

export function encode(value) {
  return cborEncode(value === undefined ? null : value, encodeOptions);
}

/** An empty payload (a `()` result) decodes to undefined. Maps decode to
 * plain objects, or to `Map`s if any key is not a string (WIT values never
 * have such keys; raw CBOR from another guest may). */
export function decode(bytes) {
  if (bytes == null) return undefined;
  bytes = asBytes(bytes);
  if (bytes.length === 0) return undefined;
  try {
    return cborDecode(bytes);
  } catch (e) {
    if (/non-string keys/.test(String(e?.message))) return cborDecode(bytes, { useMaps: true });
    throw e;
  }
}

// The generated glue does not hand every `list<u8>` over as a Uint8Array
// (an option's payload, for one, is not), and cborg accepts nothing else.
function asBytes(b) {
  if (b instanceof Uint8Array) return b;
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  return Uint8Array.from(b);
}

export function encodeArgs(args) {
  return encode(Array.from(args));
}

// ------------------------------------------------------------------ errors

/** The error tree as indented text, one actor per line, like the Rust SDK's
 * `Error::render`, so logs read the same whatever language failed. */
export function render(e) {
  let s = `actor '${e.actorName}' [${e.kind}]: ${e.message}`;
  for (const c of e.causes ?? []) s += `\n${'  '.repeat(c.depth)}actor '${c.actorName}' [${c.kind}]: ${c.message}`;
  return s;
}

const isErrorRecord = (v) => v && typeof v === 'object' && typeof v.kind === 'string' && 'causes' in v;
const payloadOf = (e) => (e && typeof e === 'object' && Object.hasOwn(e, 'payload') && isErrorRecord(e.payload) ? e.payload : undefined);

/** A tractor `error` record as a JS exception. Its own `payload` property makes
 * ComponentizeJS return the record unchanged as err(...) if it escapes an
 * export, keeping kind, actor and causes (like Rust's `?`). */
export class TractorError extends Error {
  constructor(error) {
    super(render(error));
    this.name = 'TractorError';
    this.error = error;
    Object.defineProperty(this, 'payload', { value: error, enumerable: false });
  }
  get kind() { return this.error.kind; }
  isCancelled() { return this.error.kind === 'cancelled'; }
}

/** A context whose function was cancelled: an outcome in the WIT, thrown so
 * that `ctx.result()` can return the value directly; `.by` names the canceller. */
export class ContextCancelled extends Error {
  constructor(by) { super(`context cancelled by '${by}'`); this.name = 'ContextCancelled'; this.by = by; }
}

/** A fresh error record; empty actor fields are filled in by the host. */
export function newError(message, kind = 'guest', backtrace = undefined) {
  return { kind, actorName: '', actorUid: '', message: String(message), backtrace, causes: [] };
}

/** Any thrown value as an error record. An Error keeps its JS stack in the
 * message: the caller, often in another language, has no other way to see
 * where it happened. */
export function toError(e) {
  if (e instanceof TractorError) return e.error;
  const p = payloadOf(e);
  if (p) return p;
  if (e instanceof Error) {
    // V8-style stacks repeat "Name: message" on their first line; SpiderMonkey's don't.
    const stack = stableStack((e.stack ?? '').trimEnd());
    return newError(`${e.name}: ${e.message}${stack ? `\n${stack}` : ''}`);
  }
  return newError(String(e));
}

/** A stack whose frames name files the same way every build: ComponentizeJS
 * runs its generated bindings from a random temporary folder
 * (`/tmp/<random>/sources/initializer.js`); call it
 * `componentize-js/initializer.js`. (The app's own code is `bundle.js`,
 * esbuild's bundle of it.) */
export function stableStack(stack) {
  return stack.replace(/(?:[^\s@()]*[\\/])?sources[\\/]initializer\.js/g, 'componentize-js/initializer.js');
}

/** Wrap an export returning result<_, error> so that any exception becomes
 * err(error) rather than a trap. Works for sync and async functions. */
export function fallible(fn) {
  return function (...args) {
    const fail = (e) => { throw { payload: toError(e) }; };
    try {
      const r = fn.apply(this, args);
      return r && typeof r.then === 'function' ? r.catch(fail) : r;
    } catch (e) {
      fail(e);
    }
  };
}

// Re-throw an import's ComponentError as TractorError, so callers catch one type.
function call(f) {
  try {
    return f();
  } catch (e) {
    const p = payloadOf(e);
    if (p && !(e instanceof TractorError)) throw new TractorError(p);
    throw e;
  }
}

// ------------------------------------------------------------------ identity, log, time

/** This actor: {name, uid, pid, depth, component}. */
export const current = () => identity.current();
export const grants = () => identity.currentGrants();
export const availableParallelism = () => identity.availableParallelism();

/** Log through the host's tracing subscriber, attributed to this actor
 * (console.log goes to the tree's stdout as is). Level: trace|debug|info|warn|error. */
export function log(message, level = 'info') {
  hostLog(level, String(message));
}

/** Sleep in the host: a checkpoint, so cancellation gets through. */
export function sleep(seconds) {
  call(() => rt.sleep(BigInt(Math.max(0, Math.round(seconds * 1e9)))));
}

export function checkpoint() {
  call(() => rt.checkpoint());
}

/** Run `body(scope)` in a cancel scope, optionally with a timeout in seconds.
 * The cancellation this scope caused is swallowed (trio semantics) and
 * `undefined` returned. */
export function withCancelScope(body, timeout = undefined) {
  const scope = new rt.CancelScope(timeout === undefined ? undefined : BigInt(Math.round(timeout * 1e9)));
  try {
    return body(scope);
  } catch (e) {
    if (e instanceof TractorError && e.isCancelled() && scope.cancelled()) return undefined;
    throw e;
  } finally {
    drop(scope);
  }
}

/** Block until at least one pollable is ready; the indices of the ready ones. */
export function waitAny(pollables) {
  return Array.from(poll(pollables));
}

// ------------------------------------------------------------------ nursery, portal, call

/** A pending call (`portal.start`). Dropping the handle cancels the remote
 * call, so `get()` drops it only once the outcome is in. */
export class Call {
  constructor(inner) { this.inner = inner; }
  get() {
    try { return decode(call(() => this.inner.get())); } finally { drop(this.inner); }
  }
  ready() { return this.inner.subscribe(); }
}

export class Portal {
  constructor(inner) { this.inner = inner; }
  info() { return this.inner.info(); }
  /** Start a call without waiting, so several can run at once. */
  start(func, ...args) { return new Call(call(() => this.inner.run(func, encodeArgs(args)))); }
  run(func, ...args) { return this.start(func, ...args).get(); }
  /** The return value of a runInActor child (checkpoint). */
  result() { return decode(call(() => this.inner.result())); }
  cancelActor() { call(() => this.inner.cancelActor()); }
  /** False for a portal found by name: not ours to cancel. */
  isChild() { return this.inner.isChild(); }
  /** Open a context on `func`: [ctx, first]. Prefer `withContext`, which
   * cleans up and tells the callee why when the body throws. */
  openContext(func, ...args) {
    const [inner, first] = call(() => this.inner.openContext(func, encodeArgs(args)));
    return [new Context(inner, true), decode(first)];
  }
  /** Run `body(ctx, first)`; if it throws, the callee is cancelled with that
   * error instead of being left waiting on the stream. */
  withContext(func, args, body) {
    const [ctx, first] = this.openContext(func, ...args);
    try {
      return body(ctx, first);
    } catch (e) {
      ctx.cancel(e);
      throw e;
    } finally {
      ctx.dispose();
    }
  }
}

// ------------------------------------------------------------------ discovery

/** A Portal to the newest live actor named `name` (never this one), or
 * undefined (checkpoint). Needs a `discover` grant covering `name`. */
export function findActor(name) {
  const found = call(() => discovery.findActor(name));
  return found === undefined ? undefined : new Portal(found);
}

/** The live actor with uid `uid`, or undefined. */
export function findActorByUid(uid) {
  const found = call(() => discovery.findActorByUid(uid));
  return found === undefined ? undefined : new Portal(found);
}

/** Wait until an actor named `name` is registered (checkpoint; bound it
 * with `withCancelScope`), then a Portal to it. */
export function waitForActor(name) {
  return new Portal(call(() => discovery.waitForActor(name)));
}

/** Every live actor named `name` ({info, host, parentUid}), without
 * connecting to any. */
export function queryActor(name) {
  return call(() => discovery.queryActor(name));
}

/** Every live actor this one may discover. */
export function registry() {
  return call(() => discovery.registry());
}

function spawnOptions(opts) {
  if (opts.grants === undefined && opts.backend === undefined) return undefined;
  return { grants: opts.grants, backend: opts.backend };
}

export class Nursery {
  constructor() { this.inner = new rt.Nursery(); }
  /** A daemon child running `component` (default: this actor's own).
   * `opts`: {grants, backend: 'exec'|'forkserver'|'thread'}. */
  startActor(name, component = undefined, opts = {}) {
    const so = spawnOptions(opts);
    return new Portal(call(() => (so === undefined
      ? this.inner.startActor(name, component)
      : this.inner.startActorWith(name, component, so))));
  }
  /** A child that runs `func(...args)` once; its value is `portal.result()`.
   * `opts`: {component, grants, backend}. */
  runInActor(name, func, args = [], opts = {}) {
    const a = encodeArgs(args);
    const so = spawnOptions(opts);
    return new Portal(call(() => (so === undefined
      ? this.inner.runInActor(name, opts.component, func, a)
      : this.inner.runInActorWith(name, opts.component, func, a, so))));
  }
  wait() { call(() => this.inner.wait()); }
  cancel() { call(() => this.inner.cancel()); }
  ready() { return this.inner.subscribe(); }
}

/** Run `body(nursery)` and return its value once every child has ended, so
 * no child outlives the code that started it. An exception in `body` cancels
 * the children (trio-style); a failing child fails the nursery. */
export function openNursery(body) {
  const n = new Nursery();
  let value, failure, failed = false;
  try {
    value = body(n);
  } catch (e) {
    failed = true;
    failure = e;
    try { n.cancel(); } catch (_) { /* wait reports it */ }
  }
  try {
    n.wait();
  } catch (w) {
    failure = failed ? mergeFailures(failure, w) : w;
    failed = true;
  } finally {
    drop(n.inner);
  }
  if (failed) throw failure;
  return value;
}

/** What a nursery block throws when its body threw `body` and closing it
 * failed with `closed`: a cancelled body hides nothing; a body that failed
 * because it saw the nursery's own failure adds nothing to it; otherwise
 * both are reported, as one group. */
export function mergeFailures(body, closed) {
  if (!(body instanceof TractorError) || !(closed instanceof TractorError)) return body;
  if (body.isCancelled()) return closed;
  if (closed.isCancelled()) return body;
  const mine = subtrees(body.error), theirs = subtrees(closed.error);
  const key = (t) => `${t[0].actorUid}\u0000${t[0].kind}\u0000${t[0].message}`;
  const known = new Set(theirs.map(key));
  if (mine.every((t) => known.has(key(t)))) return closed;
  const seen = new Set(mine.map(key));
  const trees = mine.concat(theirs.filter((t) => !seen.has(key(t))));
  const group = newError(`${trees.length} failures`, 'group');
  group.causes = trees.flat();
  return new TractorError(group);
}

/** The failures an error record stands for, each as its list of nodes
 * (depth 1 at its top): a group's direct causes, or the error itself. */
function subtrees(e) {
  if (e.kind === 'group') {
    const out = [];
    for (const c of e.causes) {
      if (out.length && c.depth > 1) out[out.length - 1].push(c);
      else out.push([c]);
    }
    return out;
  }
  const node = (x, depth) => ({ kind: x.kind, actorName: x.actorName, actorUid: x.actorUid, message: x.message, backtrace: x.backtrace, depth });
  return [[node(e, 1), ...e.causes.map((c) => node(c, c.depth + 1))]];
}

// ------------------------------------------------------------------ contexts and streams

/** One side of a context's stream. Iterating it receives until the other side
 * closes, which is how a callee's serve loop ends cleanly. */
export class Stream {
  constructor(inner) { this.inner = inner; }
  /** A checkpoint; blocks while the receiver's buffer is full. */
  send(value) { call(() => this.inner.send(encode(value))); }
  /** The next value, or `undefined` once the other side closed (a CBOR null is `null`). */
  receive() {
    const bytes = call(() => this.inner.receive());
    return bytes === undefined || bytes === null ? undefined : decode(bytes);
  }
  *[Symbol.iterator]() {
    for (;;) {
      const bytes = call(() => this.inner.receive());
      if (bytes === undefined || bytes === null) return;
      yield decode(bytes);
    }
  }
  close() { this.inner.close(); }
  /** Another local consumer that sees every message from now on. */
  subscribe(capacity = 1024) { return new Stream(this.inner.subscribe(capacity)); }
  ready() { return this.inner.subscribeReady(); }
  dispose() { drop(this.inner); }
}

/** A 2-way context: the caller's side from `portal.openContext`/`withContext`,
 * the callee's from `callee(ctx)`. Only the caller owns (and drops) the handle. */
export class Context {
  constructor(inner, owned) { this.inner = inner; this.owned = owned; }
  /** Callee: hand the caller its first value; `openContext` waits for it. */
  started(value = null) { call(() => this.inner.started(encode(value))); }
  openStream() { return new Stream(call(() => this.inner.openStream())); }
  /** Caller: the callee's return value. A failure throws TractorError, a
   * cancellation ContextCancelled. */
  result() {
    const out = call(() => this.inner.result());
    if (out.tag === 'cancelled') throw new ContextCancelled(out.val);
    return decode(out.val);
  }
  /** Caller: cancel the callee; with a reason (an exception or error record)
   * it sees that error, so it knows why. Callee: cancel yourself. */
  cancel(reason = undefined) {
    const r = reason === undefined || reason === null ? undefined : (isErrorRecord(reason) ? reason : toError(reason));
    this.inner.cancel(r);
  }
  ready() { return this.inner.subscribeResult(); }
  dispose() { if (this.owned) drop(this.inner); }
}

/** Wrap the `borrow<context>` a context export receives. It is borrowed: the
 * generated glue releases it, and dropping it here would trap. */
export function callee(ctx) {
  return new Context(ctx, false);
}
