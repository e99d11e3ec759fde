// The JavaScript actor of examples/polyglot (world `js-actor` in world.wit).
// Exports are the world's, in camelCase. ComponentizeJS passes s64
// parameters as BigInt and traps unless s64 results are BigInt too.
import * as tractor from 'tractor';

// The host prefixes each line with the actor's name.
const say = (what) => console.log(what);

export function whoami() {
  const me = tractor.current();
  say(`javascript actor pid=${me.pid} name=${me.name} depth=${me.depth} (ComponentizeJS/StarlingMonkey)`);
  return { language: 'javascript', version: 'StarlingMonkey', pid: me.pid };
}

export function add(a, b) {
  return a + b;
}

export function greet(p) {
  return `hello ${p.name}, ${p.age} years young, from javascript`;
}

export const simpleRpc = tractor.fallible((rawCtx, data) => {
  const ctx = tractor.callee(rawCtx);
  ctx.started(data + 1n);
  const stream = ctx.openStream();
  let count = 0;
  for (const msg of stream) {
    if (msg !== 'ping') throw new Error(`expected ping, got ${JSON.stringify(msg)}`);
    stream.send('pong');
    count++;
  }
  stream.dispose();
  say(`simple-rpc: answered ${count} pings`);
  return count;
});

export const fail = tractor.fallible((msg) => {
  function explode() {
    throw new TypeError(msg);
  }
  explode();
});

export const findAdd = tractor.fallible((name, a, b) => {
  const found = tractor.findActor(name);
  if (found === undefined) throw new Error(`no actor named ${JSON.stringify(name)}`);
  const v = found.run('add', a, b);
  const seen = tractor.queryActor(name).length;
  say(`find-add: found ${name} (uid ${found.info().uid}, child: ${found.isChild()}, ${seen} listed), add(${a}, ${b}) = ${v}`);
  return BigInt(v);
});
