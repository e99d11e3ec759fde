"""The seed's infected-asyncio echo, as an asyncio actor: the context's
stream is fed into an asyncio queue, and an asyncio task sends each message
back; both run on the actor's asyncio loop, whose awaits on tractor are
checkpoints."""

import asyncio

import cbor2
import wit_world
from wit_world.imports import runtime


class WitWorld(wit_world.WitWorld):
    async def echo(self, ctx: runtime.Context) -> int:
        # The context is ours (`own`): dropped when this returns.
        ctx.started(cbor2.dumps(None))
        stream = ctx.open_stream()
        queue: asyncio.Queue = asyncio.Queue()

        async def sender() -> int:
            sent = 0
            while (msg := await queue.get()) is not None:
                await stream.send(msg)
                sent += 1
            return sent

        task = asyncio.create_task(sender())
        while True:
            msg = await stream.receive()
            await queue.put(msg)
            if msg is None:
                break
        return await task
