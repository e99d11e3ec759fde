"""{{name}}: a service. The root starts a daemon that keeps a counter
between calls and streams ticks over a 2-way context."""

import tractor
import wit_world

# The daemon's state: its instance lives as long as the actor.
total = 0


class WitWorld(wit_world.WitWorld):
    @tractor.fallible
    def main(self):
        with tractor.open_nursery() as n:       # closing it cancels the daemon
            service = n.start_actor("counter")
            a = service.run("add", 1)
            b = service.run("add", 41)
            print(f"counter: {a}, then {b}", flush=True)
            ctx, _count = service.open_context("ticks", 3)
            with ctx:
                ticks = list(ctx.open_stream())
                sent = ctx.result()
            print(f"ticks: {ticks} ({sent} sent)", flush=True)

    def add(self, n):
        global total
        total += n
        return total

    @tractor.fallible
    def ticks(self, ctx, count):
        ctx = tractor.callee(ctx)
        ctx.started(count)
        stream = ctx.open_stream()
        for i in range(count):
            stream.send(i)
            tractor.sleep(0.01)
        stream.close()
        return count
