"""{{name}}: `main` runs in the root actor; it starts a child of the same
component and collects what the child's `greet` returns."""

import tractor
import wit_world


class WitWorld(wit_world.WitWorld):
    @tractor.fallible
    def main(self):
        me = tractor.current()
        print(f"hello from {me.name} (pid {me.pid})", flush=True)
        with tractor.open_nursery() as n:
            child = n.run_in_actor("greeter", "greet", "world")
            print(child.result(), flush=True)

    def greet(self, who):
        me = tractor.current()
        return f"hello, {who}, from {me.name} (pid {me.pid})"
