"""The seed's infected-asyncio echo, as an asyncio actor: the context's
stream is fed into an asyncio queue, and an asyncio task sends each message
back; both run on the actor's asyncio loop, whose awaits on tractor are
checkpoints."""

import asyncio

import tractor_aio as tractor
import wit_world


class WitWorld(wit_world.WitWorld):
    async def add(self, a: int, b: int) -> int:
        return a + b

    @tractor.fallible
    async def gather(self, n: int) -> int:
        async with tractor.open_nursery() as nursery:
            children = await asyncio.gather(*(nursery.start_actor(f"adder_{i}") for i in range(n)))
            sums = await asyncio.gather(*(c.run("add", i, i) for i, c in enumerate(children)))
            return sum(sums)

    @tractor.fallible
    async def echo(self, ctx) -> int:
        # The context is ours (`own`): dropped when this returns.
        ctx = tractor.callee(ctx)
        ctx.started(None)
        stream = ctx.open_stream()
        queue: asyncio.Queue = asyncio.Queue()

        async def sender() -> int:
            sent = 0
            while (msg := await queue.get()) is not None:
                await stream.send(msg)
                sent += 1
            return sent

        task = asyncio.create_task(sender())
        async for msg in stream:
            await queue.put(msg)
        await queue.put(None)
        return await task
