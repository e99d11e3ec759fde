"""tractor: the Python guest helper, a thin layer over the `tractor:actor@0.1.0` imports.

For components built with componentize-py 0.25 (see build.sh beside this
file). The guest's world must `include tractor:actor/imports@0.1.0;` so that
the generated `wit_world` package has `imports.{runtime,identity,log,types,poll}`.

    import tractor, wit_world

    class WitWorld(wit_world.WitWorld):
        @tractor.fallible
        def main(self):
            with tractor.open_nursery() as n:
                p = n.start_actor("calc", "leaf")
                print(p.run("add", 2, 3))          # -> 5
                p.cancel_actor()

Values cross actors as CBOR (cbor2's pure-Python codec, because
componentize-py cannot link C extensions): call arguments are a CBOR array
(positional) or map (keywords). Records are dicts (kebab- or snake_case keys,
the host accepts both), variants `{"case": payload}` or `"case"`, enums and
flags strings, options `None`/value, `result<T, E>` `{"ok": v}`/`{"err": e}`.
Dataclass instances encode as maps and Enum members as their kebab-case
name, so the generated WIT types can be passed back as they are.

Every blocking call is a checkpoint: it raises `TractorError` (kind
`cancelled`, or the failure that cancelled the scope) instead of blocking.

componentize-py runs a module's top level at build time, when host imports
trap: nothing here calls the host on import, and apps must not either.
"""

import dataclasses
import enum
import functools
import traceback as _traceback

import cbor2
from componentize_py_types import Err

from wit_world.imports import identity as _identity
from wit_world.imports import log as _log
try:
    from wit_world.imports import poll as _poll
except ImportError:
    # An asyncio actor's world (tractor:actor@0.2.0, see tractor_aio) has
    # no pollables; it uses this module's errors and codec only.
    _poll = None
try:
    from wit_world.imports import discovery as _discovery
except ImportError:
    # A world built before discovery existed.
    _discovery = None
from wit_world.imports import runtime as _rt
from wit_world.imports import types as _types

Error = _types.Error
ErrorKind = _types.ErrorKind
ErrorNode = _types.ErrorNode
ActorInfo = _identity.ActorInfo
Grants = _types.Grants
DirGrant = _types.DirGrant
SpawnBackend = _types.SpawnBackend
SpawnOptions = _types.SpawnOptions
Level = _log.Level

__all__ = [
    "TractorError", "ContextCancelled", "Error", "ErrorKind", "ActorInfo", "Grants",
    "DirGrant", "SpawnBackend", "SpawnOptions", "open_nursery", "Nursery", "Portal",
    "Call", "Context", "Stream", "callee", "fallible", "to_error", "new_error",
    "current", "grants", "available_parallelism", "log", "sleep", "checkpoint",
    "cancel_scope", "encode", "encode_args", "decode", "render", "wait_any",
]


# ---------------------------------------------------------------- errors

def _kind_name(kind):
    return kind.name.lower().replace("_", "-")


def render(e):
    """The error tree as indented text, one actor per line, like the Rust SDK's
    `Error::render`, so logs read the same whatever language failed."""
    s = f"actor '{e.actor_name}' [{_kind_name(e.kind)}]: {e.message}"
    for c in e.causes:
        s += "\n" + "  " * c.depth + f"actor '{c.actor_name}' [{_kind_name(c.kind)}]: {c.message}"
    return s


class TractorError(Exception):
    """A `tractor:actor/types.error` as a Python exception.

    `.error` keeps the record so that re-raising it from an export (through
    `fallible`) hands the caller the original kind, actor and causes.
    """

    def __init__(self, error):
        self.error = error
        super().__init__(render(error))

    @property
    def kind(self):
        return self.error.kind

    @property
    def message(self):
        return self.error.message

    def is_cancelled(self):
        return self.error.kind == ErrorKind.CANCELLED


class ContextCancelled(Exception):
    """A context whose function was cancelled: an outcome rather than a
    failure in the WIT, raised so that `ctx.result()` can return the value
    directly; `.by` names the canceller."""

    def __init__(self, by):
        self.by = by
        super().__init__(f"context cancelled by {by!r}")


def new_error(message, kind=ErrorKind.GUEST, backtrace=None):
    """A fresh error record; empty actor fields are filled in by the host."""
    return Error(kind=kind, actor_name="", actor_uid="", message=message, backtrace=backtrace, causes=[])


def to_error(exc):
    """Any exception as an error record.

    A `TractorError` keeps its record, as Rust's `?` would; anything else
    becomes a `guest` error carrying the Python traceback in its message,
    because the caller (often in another language) has no other way to see
    where it happened.
    """
    if isinstance(exc, TractorError):
        return exc.error
    if isinstance(exc, Err) and isinstance(exc.value, Error):
        return exc.value
    tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    return new_error(f"{type(exc).__name__}: {exc}\n{tb}".rstrip())


def fallible(func):
    """Decorator for exports returning `result<_, error>`.

    componentize-py maps such an export to "return T or raise `Err(E)`"; any
    other exception escaping an export traps the instance (the caller then
    sees only `trap`). This turns every exception into `Err(to_error(exc))`.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Err:
            raise
        except BaseException as exc:  # noqa: BLE001 - report everything to the caller
            # Start the traceback at the export itself, not at this wrapper.
            if exc.__traceback__ is not None:
                exc = exc.with_traceback(exc.__traceback__.tb_next)
            raise Err(to_error(exc)) from None

    return wrapper


def _call(f, *args):
    # componentize-py raises `Err(error)` for an `err` from a result import;
    # re-raise it as TractorError so callers catch one exception type.
    try:
        return f(*args)
    except Err as e:
        raise TractorError(e.value) from None


# ---------------------------------------------------------------- CBOR

def _default(encoder, value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        encoder.encode({f.name.replace("_", "-"): getattr(value, f.name) for f in dataclasses.fields(value)})
    elif isinstance(value, enum.Enum):
        encoder.encode(value.name.lower().replace("_", "-"))
    elif isinstance(value, (set, frozenset)):
        encoder.encode(list(value))
    else:
        raise cbor2.CBOREncodeTypeError(f"cannot encode {type(value).__name__} as CBOR")


def encode(value):
    return cbor2.dumps(value, default=_default)


def encode_args(args=(), kwargs=None):
    """Call arguments: an array (positional) or a map (by name); the host
    matches either against the callee's WIT parameters."""
    if kwargs:
        if args:
            raise TypeError("give arguments either by position or by name, not both")
        return encode({k.replace("_", "-"): v for k, v in kwargs.items()})
    return encode(list(args))


def decode(data):
    """CBOR to Python; an empty payload (a `()` result) is None."""
    if not data:
        return None
    return cbor2.loads(bytes(data))


# ---------------------------------------------------------------- identity, log, time

def current():
    """This actor: `.name`, `.uid`, `.pid`, `.depth`, `.component`."""
    return _identity.current()


def grants():
    return _identity.current_grants()


def available_parallelism():
    return _identity.available_parallelism()


_LEVELS = {"trace": Level.TRACE, "debug": Level.DEBUG, "info": Level.INFO,
           "warn": Level.WARN, "warning": Level.WARN, "error": Level.ERROR}


def log(message, level="info"):
    """Log through the host's tracing subscriber, attributed to this actor
    (unlike `print`, which goes to the tree's stdout as is)."""
    _log.log(_LEVELS[level] if isinstance(level, str) else level, str(message))


def sleep(seconds):
    """Sleep in the host (a checkpoint): `time.sleep` would block the actor
    without letting cancellation through."""
    _call(_rt.sleep, max(0, int(seconds * 1e9)))


def checkpoint():
    _call(_rt.checkpoint)


class cancel_scope:
    """`with cancel_scope(timeout=1.5) as s:` -- checkpoints inside fail with
    `cancelled` once `s.cancel()` is called or the timeout has passed; that
    cancellation is swallowed at the end of the block (trio semantics)."""

    def __init__(self, timeout=None):
        self._timeout = None if timeout is None else int(timeout * 1e9)
        self._inner = None
        self._was_cancelled = False

    def __enter__(self):
        self._inner = _rt.CancelScope(self._timeout)
        return self

    def cancel(self):
        self._inner.cancel()

    @property
    def cancelled(self):
        # Using a dropped resource traps, so after the block the answer is cached.
        return self._inner.cancelled() if self._inner is not None else self._was_cancelled

    def __exit__(self, et, ev, tb):
        cancelled = self._was_cancelled = self._inner.cancelled()
        self._inner.__exit__(None, None, None)
        self._inner = None
        return bool(cancelled and isinstance(ev, TractorError) and ev.is_cancelled())


# ---------------------------------------------------------------- nursery, portal, call

def _spawn_options(grants, backend):
    if grants is None and backend is None:
        return None
    if isinstance(backend, str):
        backend = SpawnBackend[backend.upper()]
    return SpawnOptions(grants=grants, backend=backend)


class Call:
    """A pending call (`portal.start`). Dropping the host handle cancels the
    remote call, so `get()` drops it only once the outcome is in."""

    def __init__(self, inner):
        self._inner = inner

    def get(self):
        try:
            return decode(_call(self._inner.get))
        finally:
            self._inner.__exit__(None, None, None)

    def ready(self):
        """A `wasi:io/poll` pollable for `wait_any`."""
        return self._inner.subscribe()


def wait_any(pollables):
    """Block until at least one pollable is ready; the indices of the ready ones."""
    return list(_poll.poll(list(pollables)))


class Portal:
    """A handle on a child actor, owned by its nursery."""

    def __init__(self, inner):
        self._inner = inner

    def info(self):
        return self._inner.info()

    def start(self, func, *args, **kwargs):
        """Start a call without waiting, so several can run at once."""
        return Call(_call(self._inner.run, func, encode_args(args, kwargs)))

    def run(self, func, *args, **kwargs):
        return self.start(func, *args, **kwargs).get()

    def result(self):
        """The return value of a `run_in_actor` child (checkpoint)."""
        return decode(_call(self._inner.result))

    def cancel_actor(self):
        _call(self._inner.cancel_actor)

    def is_child(self):
        """True for a child of our nurseries, False for an actor found by name
        (which we may call but not cancel)."""
        return self._inner.is_child()

    def open_context(self, func, *args, **kwargs):
        """Open a 2-way context on `func`: `(ctx, first)`, `first` being what the
        callee passed to `started`. Use `with ctx:` so that an exception in the
        block cancels the callee with that error instead of leaving it waiting."""
        inner, first = _call(self._inner.open_context, func, encode_args(args, kwargs))
        return Context(inner, owned=True), decode(first)


def _lookups():
    if _discovery is None:
        raise TractorError(new_error("this actor's world has no tractor:actor/discovery", ErrorKind.BAD_ARGS))
    return _discovery


def find_actor(name):
    """A Portal to the newest live actor named `name` (never this one), or None
    (checkpoint). Needs a `discover` grant covering `name`."""
    found = _call(_lookups().find_actor, name)
    return None if found is None else Portal(found)


def find_actor_by_uid(uid):
    """The live actor with uid `uid`, or None."""
    found = _call(_lookups().find_actor_by_uid, uid)
    return None if found is None else Portal(found)


def wait_for_actor(name):
    """Wait until an actor named `name` is registered (checkpoint; bound it
    with `cancel_scope`), then a Portal to it."""
    return Portal(_call(_lookups().wait_for_actor, name))


def query_actor(name):
    """Every live actor named `name` (info, host, parent_uid), without
    connecting to any."""
    return _call(_lookups().query_actor, name)


def registry():
    """Every live actor this one may discover."""
    return _call(_lookups().registry)


class Nursery:
    """A supervision scope for child actors; use it through `open_nursery`."""

    def __init__(self):
        self._inner = _rt.Nursery()

    def start_actor(self, name, component=None, *, grants=None, backend=None):
        """A daemon child running `component` (default: this actor's own).
        `grants` narrows its capabilities; `backend` is "exec", "forkserver" or
        "thread" (default: the manifest's)."""
        opts = _spawn_options(grants, backend)
        if opts is None:
            return Portal(_call(self._inner.start_actor, name, component))
        return Portal(_call(self._inner.start_actor_with, name, component, opts))

    def run_in_actor(self, name, func, *args, component=None, grants=None, backend=None, **kwargs):
        """A child that runs `func(*args)` once; its value is `portal.result()`."""
        a = encode_args(args, kwargs)
        opts = _spawn_options(grants, backend)
        if opts is None:
            return Portal(_call(self._inner.run_in_actor, name, component, func, a))
        return Portal(_call(self._inner.run_in_actor_with, name, component, func, a, opts))

    def wait(self):
        _call(self._inner.wait)

    def cancel(self):
        _call(self._inner.cancel)

    def ready(self):
        return self._inner.subscribe()


class open_nursery:
    """`with open_nursery() as n:` -- the block does not end until every child
    has ended, and an exception in it cancels the children (trio-style), so no
    child outlives the code that started it."""

    def __enter__(self):
        self._n = Nursery()
        return self._n

    def __exit__(self, et, ev, tb):
        n = self._n
        try:
            if ev is not None:
                try:
                    n.cancel()
                except TractorError:
                    pass
            try:
                n.wait()
            except TractorError as w:
                instead = closing_failure(ev, w)
                if instead is not None:
                    raise instead from None
            return False
        finally:
            n._inner.__exit__(None, None, None)


def closing_failure(body, closed):
    """What a nursery block whose closing failed with `closed` raises instead
    of what its body raised (`body`, or None), if anything: `closed` when the
    body succeeded, else their merge when it adds something. No real failure
    is lost: see merge_failures."""
    if body is None:
        return closed
    merged = merge_failures(body, closed)
    return None if merged is body else merged


def merge_failures(body, closed):
    """What a nursery block raises when its body raised `body` and closing it
    failed with `closed` (a TractorError): a cancelled body hides nothing; a
    body that failed because it saw the nursery's own failure adds nothing
    to it; otherwise both are reported, as one group."""
    if not isinstance(body, TractorError):
        return body
    if body.is_cancelled():
        return closed
    if closed.is_cancelled():
        return body
    mine, theirs = _subtrees(body.error), _subtrees(closed.error)
    key = lambda t: (t[0].actor_uid, t[0].kind, t[0].message)
    known = [key(t) for t in theirs]
    if all(key(t) in known for t in mine):
        return closed
    seen = [key(t) for t in mine]
    trees = mine + [t for t in theirs if key(t) not in seen]
    return TractorError(_types.Error(
        kind=ErrorKind.GROUP, actor_name="", actor_uid="",
        message=f"{len(trees)} failures", backtrace=None,
        causes=[node for t in trees for node in t]))


def _subtrees(e):
    """The failures an error record stands for, each as its list of nodes
    (depth 1 at its top): a group's direct causes, or the error itself."""
    if e.kind == ErrorKind.GROUP:
        out = []
        for c in e.causes:
            if out and c.depth > 1:
                out[-1].append(c)
            else:
                out.append([c])
        return out
    top = _types.ErrorNode(kind=e.kind, actor_name=e.actor_name, actor_uid=e.actor_uid,
                           message=e.message, backtrace=e.backtrace, depth=1)
    below = [_types.ErrorNode(kind=c.kind, actor_name=c.actor_name, actor_uid=c.actor_uid,
                              message=c.message, backtrace=c.backtrace, depth=c.depth + 1)
             for c in e.causes]
    return [[top] + below]


# ---------------------------------------------------------------- contexts and streams

class Stream:
    """One side of a context's stream. Iterating it receives until the other
    side closes, which is how a callee's serve loop ends cleanly."""

    def __init__(self, inner):
        self._inner = inner

    def send(self, value):
        _call(self._inner.send, encode(value))

    def receive(self):
        """The next message; `EOFError` once the other side closed (a message
        may itself be None, so closing cannot be signalled by a value)."""
        r = self.receive_opt()
        if r is None:
            raise EOFError("stream closed by the other side")
        return r[0]

    def receive_opt(self):
        """`(value,)` for the next message, or `None` once the other side closed."""
        data = _call(self._inner.receive)
        return None if data is None else (decode(data),)

    def __iter__(self):
        while True:
            r = self.receive_opt()
            if r is None:
                return
            yield r[0]

    def close(self):
        self._inner.close()

    def subscribe(self, capacity=1024):
        """Another local consumer that sees every message from now on."""
        return Stream(self._inner.subscribe(capacity))

    def ready(self):
        return self._inner.subscribe_ready()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close()
        return False


class Context:
    """A 2-way context: the caller's side from `portal.open_context`, the
    callee's from `callee(ctx)`. Only the caller owns (and drops) the handle."""

    def __init__(self, inner, owned):
        self._inner = inner
        self._owned = owned

    def started(self, value=None):
        """Callee: hand the caller its first value; `open_context` waits for it."""
        _call(self._inner.started, encode(value))

    def open_stream(self):
        return Stream(_call(self._inner.open_stream))

    def result(self):
        """Caller: the callee's return value. A failure raises TractorError, a
        cancellation ContextCancelled."""
        out = _call(self._inner.result)
        if isinstance(out, _rt.ContextOutcome_Cancelled):
            raise ContextCancelled(out.value)
        return decode(out.value)

    def cancel(self, reason=None):
        """Caller: cancel the callee; with `reason` (an exception or error
        record) it sees that error, so it knows why. Callee: cancel yourself."""
        if reason is not None and not isinstance(reason, Error):
            reason = to_error(reason)
        self._inner.cancel(reason)

    def ready(self):
        return self._inner.subscribe_result()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if self._owned:
            if ev is not None:
                self.cancel(ev)
            self._inner.__exit__(None, None, None)
        return False


def callee(ctx):
    """Wrap the `borrow<context>` a context export receives. It is borrowed:
    componentize-py's glue releases it, and dropping it ourselves would trap."""
    return Context(ctx, owned=False)
