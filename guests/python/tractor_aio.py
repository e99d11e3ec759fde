"""tractor_aio: the Python helper for asyncio actors (`tractor:actor@0.2.0`).

A world that includes `tractor:actor/imports@0.2.0` and exports `async
func`s makes an asyncio actor: componentize-py runs an asyncio loop in the
component, the host runs every call and context as a task on its one
instance, and every tractor import is an awaitable checkpoint.

    import asyncio, tractor_aio as tractor, wit_world

    class WitWorld(wit_world.WitWorld):
        @tractor.fallible
        async def main(self):
            async with tractor.open_nursery() as n:
                a = await n.start_actor("a", "leaf")
                b = await n.start_actor("b", "leaf")
                print(await asyncio.gather(a.run("add", 1, 2), b.run("add", 3, 4)))

Errors, the CBOR codec and `merge_failures` are `tractor`'s. asyncio's
timers (`call_later`, so `asyncio.sleep(t > 0)`) are not implemented by
componentize-py's loop: use `await tractor_aio.sleep(seconds)`. A context
export takes its context as its own (`ctx: context`): componentize-py 0.25
cannot release a borrow given to an async export.
"""

import functools
import traceback as _traceback

from componentize_py_types import Err

from tractor import (ContextCancelled, Error, ErrorKind, SpawnBackend, SpawnOptions, TractorError,
                     closing_failure, decode, encode, encode_args, new_error, render, to_error)
from wit_world.imports import identity as _identity
from wit_world.imports import runtime as _rt

__all__ = [
    "TractorError", "ContextCancelled", "Error", "ErrorKind", "open_nursery", "Nursery", "Portal",
    "Context", "Stream", "callee", "fallible", "current", "sleep", "checkpoint", "encode", "decode",
    "render", "new_error", "to_error",
]


async def _call(coroutine):
    """Await a tractor import; its `err` raises TractorError."""
    try:
        return await coroutine
    except Err as e:
        raise TractorError(e.value) from None


def _sync(f, *args):
    try:
        return f(*args)
    except Err as e:
        raise TractorError(e.value) from None


def fallible(func):
    """For `async def` exports returning `result<T, error>`: an exception
    becomes the WIT error (with its traceback) instead of a trap."""

    @functools.wraps(func)
    async def wrapper(*args, **kwargs):
        try:
            return await func(*args, **kwargs)
        except Err:
            raise
        except TractorError as e:
            raise Err(e.error) from None
        except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
            err = to_error(e)
            if err.backtrace is None:
                err.backtrace = "".join(_traceback.format_exception(e))
            raise Err(err) from None

    return wrapper


def current():
    return _identity.current()


async def sleep(seconds):
    """Sleep (checkpoint); the actor's other tasks run meanwhile."""
    await _call(_rt.sleep(int(seconds * 1_000_000_000)))


async def checkpoint():
    """Raise if this task's scope was cancelled; let the others run."""
    await _call(_rt.checkpoint())


def _options(grants, backend):
    if isinstance(backend, str):
        backend = SpawnBackend[backend.upper()]
    return SpawnOptions(grants=grants, backend=backend)


class Portal:
    """A handle on an actor."""

    def __init__(self, inner):
        self._inner = inner

    def info(self):
        return self._inner.info()

    async def run(self, func, *args, **kwargs):
        """Call `func` and await its result; cancelling the awaiting task
        cancels the call in the callee."""
        return decode(await _call(self._inner.run(func, encode_args(args, kwargs))))

    async def result(self):
        return decode(await _call(self._inner.result()))

    async def cancel_actor(self):
        await _call(self._inner.cancel_actor())

    async def open_context(self, func, *args, **kwargs):
        """`(context, first)`: the context and the callee's `started` value."""
        inner, first = await _call(self._inner.open_context(func, encode_args(args, kwargs)))
        return Context(inner), decode(first)


class Nursery:
    """Children started here end before the nursery does."""

    def __init__(self):
        self._inner = _rt.Nursery()

    async def start_actor(self, name, component=None, *, grants=None, backend=None):
        return Portal(await _call(self._inner.start_actor(name, component, _options(grants, backend))))

    async def run_in_actor(self, name, func, *args, component=None, grants=None, backend=None, **kwargs):
        opts = _options(grants, backend)
        return Portal(await _call(self._inner.run_in_actor(name, component, func, encode_args(args, kwargs), opts)))

    async def wait(self):
        await _call(self._inner.wait())

    async def cancel(self):
        await _call(self._inner.cancel())


class open_nursery:
    """`async with open_nursery() as n:` -- the block does not end until
    every child has ended; an exception in it cancels the children."""

    async def __aenter__(self):
        self._n = Nursery()
        return self._n

    async def __aexit__(self, et, ev, tb):
        n = self._n
        if ev is not None:
            try:
                await n.cancel()
            except TractorError:
                pass
        try:
            await n.wait()
        except TractorError as w:
            instead = closing_failure(ev, w)
            if instead is not None:
                raise instead from None
        return False


class Stream:
    """One side of a context's stream; `async for msg in stream` receives
    until the other side closes."""

    def __init__(self, inner):
        self._inner = inner

    async def send(self, value):
        await _call(self._inner.send(encode(value)))

    async def receive_opt(self):
        """`(value,)` for the next message, or `None` once the other side closed."""
        data = await _call(self._inner.receive())
        return None if data is None else (decode(data),)

    def __aiter__(self):
        return self

    async def __anext__(self):
        r = await self.receive_opt()
        if r is None:
            raise StopAsyncIteration
        return r[0]

    def close(self):
        self._inner.close()

    def subscribe(self, capacity=1024):
        return Stream(self._inner.subscribe(capacity))


class Context:
    """A 2-way context: the caller's side from `portal.open_context`, the
    callee's from `callee(ctx)`."""

    def __init__(self, inner):
        self._inner = inner

    def started(self, value=None):
        _sync(self._inner.started, encode(value))

    def open_stream(self):
        return Stream(_sync(self._inner.open_stream))

    async def result(self):
        """Caller: the callee's return value; its failure raises TractorError,
        a cancellation ContextCancelled."""
        out = await _call(self._inner.result())
        if isinstance(out, _rt.ContextOutcome_Cancelled):
            raise ContextCancelled(out.value)
        return decode(out.value)

    def cancel(self, reason=None):
        if reason is not None and not isinstance(reason, Error):
            reason = to_error(reason)
        self._inner.cancel(reason)


def callee(ctx):
    """Wrap the context a context export receives (as its own)."""
    return Context(ctx)
