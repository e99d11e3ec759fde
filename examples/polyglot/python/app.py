"""The Python actor of examples/polyglot (world `python-actor` in world.wit).

componentize-py runs this module's top level at build time, where host
imports trap: everything that talks to the host happens inside the exports.
"""

import sys

import tractor
import wit_world
from wit_world import ActorFacts, Person


def say(what):
    # The host prefixes each line with the actor's name. Flush, so that the
    # line is out before the reply that follows it reaches the caller.
    print(what, flush=True)


class WitWorld(wit_world.WitWorld):
    def whoami(self):
        me = tractor.current()
        version = sys.version.split()[0]
        say(f"python actor pid={me.pid} name={me.name} depth={me.depth} (CPython {version})")
        return ActorFacts(language="python", version=version, pid=me.pid)

    def add(self, a, b):
        return a + b

    def greet(self, p: Person):
        return f"hello {p.name}, {p.age} years young, from python"

    @tractor.fallible
    def simple_rpc(self, ctx, data):
        ctx = tractor.callee(ctx)
        ctx.started(data + 1)
        stream = ctx.open_stream()
        count = 0
        for msg in stream:
            if msg != "ping":
                raise ValueError(f"expected ping, got {msg!r}")
            stream.send("pong")
            count += 1
        say(f"simple-rpc: answered {count} pings")
        return count

    @tractor.fallible
    def fail(self, msg):
        def explode():
            raise ValueError(msg)

        explode()

    @tractor.fallible
    def find_add(self, name, a, b):
        found = tractor.find_actor(name)
        if found is None:
            raise ValueError(f"no actor named {name!r}")
        v = found.run("add", a, b)
        say(f"find-add: found {name} (uid {found.info().uid}, child: {found.is_child()}), add({a}, {b}) = {v}")
        return v

    @tractor.fallible
    def spawn_rust(self):
        with tractor.open_nursery() as n:
            leaf = n.start_actor("leaf", "leaf")
            v = leaf.run("add", 20, 22)
            say(f"spawn-rust: rust leaf pid={leaf.info().pid} says add(20, 22) = {v}")
            leaf.cancel_actor()
        return v
