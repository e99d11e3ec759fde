// {{name}}: a service. The root starts a daemon that keeps a counter
// between calls and streams ticks over a 2-way context.
import * as tractor from 'tractor';

// The daemon's state: its instance lives as long as the actor.
let total = 0;

export const main = tractor.fallible(() => {
  tractor.openNursery((n) => {            // closing it cancels the daemon
    const service = n.startActor('counter');
    const a = service.run('add', 1);
    const b = service.run('add', 41);
    console.log(`counter: ${a}, then ${b}`);
    const [ticks, sent] = service.withContext('ticks', [3], (ctx) => {
      const stream = ctx.openStream();
      const ticks = [...stream];
      stream.dispose();
      return [ticks, ctx.result()];
    });
    console.log(`ticks: [${ticks.join(', ')}] (${sent} sent)`);
  });
});

export function add(n) {
  total += n;
  return total;
}

export const ticks = tractor.fallible((rawCtx, count) => {
  const ctx = tractor.callee(rawCtx);
  ctx.started(count);
  const stream = ctx.openStream();
  for (let i = 0; i < count; i++) {
    stream.send(i);
    tractor.sleep(0.01);
  }
  stream.close();
  stream.dispose();
  return count;
});
