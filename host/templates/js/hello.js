// {{name}}: `main` runs in the root actor; it starts a child of the same
// component and collects what the child's `greet` returns.
import * as tractor from 'tractor';

export const main = tractor.fallible(() => {
  const me = tractor.current();
  console.log(`hello from ${me.name} (pid ${me.pid})`);
  tractor.openNursery((n) => {
    const child = n.runInActor('greeter', 'greet', ['world']);
    console.log(child.result());
  });
});

export function greet(who) {
  const me = tractor.current();
  return `hello, ${who}, from ${me.name} (pid ${me.pid})`;
}
