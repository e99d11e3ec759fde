#!/usr/bin/env python3
"""An independent parent for the tractor wire protocol, written from
docs/protocol.md alone (Python standard library only).

    python3 tests/protocol/parent.py --host-exe PATH --wasm PATH [--only SUBSTRING]

It starts real actor processes (`tractor-host __actor`, and a zygote),
speaks the framed CBOR protocol to them and prints `ok <check>` or
`FAIL <check>: <why>` per check; it exits 0 only if every check passed.
"""
import argparse, fcntl, os, secrets, select, signal, struct, sys, tempfile, time, traceback

TIMEOUT = 30.0          # every read and every wait for an exit
FIRST_TIMEOUT = 180.0   # the first actor (and the zygote) may precompile the component
COMPONENT = "testbed"


# ---------------------------------------------------------------- CBOR ----

class Cbor:
    """RFC 8949, small: definite lengths out; indefinite lengths, tags
    (looked through) and half/single/double floats in."""
    BREAK = object()

    @staticmethod
    def _head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for ai, fmt, lim in ((24, ">B", 1 << 8), (25, ">H", 1 << 16), (26, ">I", 1 << 32), (27, ">Q", 1 << 64)):
            if n < lim:
                return bytes([major << 5 | ai]) + struct.pack(fmt, n)
        raise ValueError("integer too large for CBOR")

    @classmethod
    def encode(cls, v):
        if v is None: return b"\xf6"
        if v is True: return b"\xf5"
        if v is False: return b"\xf4"
        if isinstance(v, int): return cls._head(0, v) if v >= 0 else cls._head(1, -1 - v)
        if isinstance(v, float): return b"\xfb" + struct.pack(">d", v)
        if isinstance(v, (bytes, bytearray)): return cls._head(2, len(v)) + bytes(v)
        if isinstance(v, str):
            b = v.encode()
            return cls._head(3, len(b)) + b
        if isinstance(v, (list, tuple)):
            return cls._head(4, len(v)) + b"".join(map(cls.encode, v))
        if isinstance(v, dict):
            return cls._head(5, len(v)) + b"".join(cls.encode(k) + cls.encode(x) for k, x in v.items())
        raise TypeError(f"cannot encode {type(v).__name__}")

    @classmethod
    def decode(cls, data):
        v, pos = cls._item(bytes(data), 0)
        if v is cls.BREAK or pos != len(data):
            raise ValueError("not exactly one CBOR data item")
        return v

    FLOATS = {25: (2, ">e"), 26: (4, ">f"), 27: (8, ">d")}

    @staticmethod
    def _take(d, pos, n):
        if pos + n > len(d): raise ValueError("truncated CBOR")
        return d[pos:pos + n], pos + n

    @classmethod
    def _seq(cls, d, pos, count):
        """`count` data items, or (count None) the items up to a break."""
        items = []
        while count is None or len(items) < count:
            v, pos = cls._item(d, pos)
            if v is cls.BREAK:
                if count is None: return items, pos
                raise ValueError("unexpected break")
            items.append(v)
        return items, pos

    @classmethod
    def _item(cls, d, pos):
        (ib,), pos = cls._take(d, pos, 1)
        major, ai = ib >> 5, ib & 31
        if major == 7 and ai in cls.FLOATS:
            size, fmt = cls.FLOATS[ai]
            raw, pos = cls._take(d, pos, size)
            return struct.unpack(fmt, raw)[0], pos
        if ai == 31:
            if major == 7: return cls.BREAK, pos
            if major not in (2, 3, 4, 5): raise ValueError("indefinite length on a major type without one")
            n = None
        elif ai < 24:
            n = ai
        elif ai < 28:
            raw, pos = cls._take(d, pos, 1 << (ai - 24))
            n = int.from_bytes(raw, "big")
        else:
            raise ValueError(f"reserved additional information {ai}")
        if major == 0: return n, pos
        if major == 1: return -1 - n, pos
        if major in (2, 3):
            if n is None:                               # chunks of the same type up to a break
                chunks, pos = cls._seq(d, pos, None)
                if any(type(c) is not (bytes if major == 2 else str) for c in chunks):
                    raise ValueError("bad chunk in an indefinite-length string")
                return (b"" if major == 2 else "").join(chunks), pos
            raw, pos = cls._take(d, pos, n)
            return (raw if major == 2 else raw.decode()), pos
        if major == 4: return cls._seq(d, pos, n)
        if major == 5:
            kv, pos = cls._seq(d, pos, None if n is None else 2 * n)
            if len(kv) % 2: raise ValueError("a map with a key and no value")
            return {(tuple(k) if isinstance(k, list) else k): v for k, v in zip(kv[::2], kv[1::2])}, pos
        if major == 6:                                  # a tag: looked through
            (v,), pos = cls._seq(d, pos, 1)
            return v, pos
        return {20: False, 21: True, 22: None, 23: None}.get(n, ("simple", n)), pos


# ------------------------------------------------------ child processes ----

class Fail(Exception):
    """A check failed (or a read timed out)."""


class Abort(BaseException):
    """The watchdog: ends the whole run, past the per-check handlers."""

def need(cond, why):
    if not cond:
        raise Fail(why)

class Ctx:          # the run's settings: host, wasm, tree, tmp, cache, warm
    pass

CTX = Ctx()

class Proc:
    """A `tractor-host` child (`__actor` or `__zygote`) with a link on fd 3
    (frames to it) and fd 4 (frames from it), handed descriptors on 5, 6, ..."""
    ALL = []

    def __init__(self, name, sub="__actor", handed=()):
        self.name, self.buf, self.status = name, b"", None
        child_r, self.wfd = os.pipe()
        self.rfd, child_w = os.pipe()
        self.log = os.path.join(CTX.tmp, f"{name}-{secrets.token_hex(3)}.log")
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        # Lift every source above the targets so that no dup2 clobbers another.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in [log, child_r, child_w, *handed]]
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, high[0], 1), (os.POSIX_SPAWN_DUP2, high[0], 2)]
        actions += [(os.POSIX_SPAWN_DUP2, fd, 3 + i) for i, fd in enumerate(high[1:])]
        env = dict(os.environ, TRACTOR_CACHE_DIR=CTX.cache, TRACTOR_TREE=CTX.tree,
                   TRACTOR_PARENT_PID=str(os.getpid()))
        try:
            self.pid = os.posix_spawn(CTX.host, [CTX.host, sub], env, file_actions=actions,
                                      setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        finally:
            for fd in high + [log, child_r, child_w]:
                os.close(fd)
        Proc.ALL.append(self)
        os.set_blocking(self.wfd, False)

    def send_raw(self, *bodies):
        """Write one frame per body, all in one write where the pipe allows."""
        data = b"".join(struct.pack(">I", len(b)) + b for b in bodies)
        deadline = time.monotonic() + TIMEOUT
        while data:
            need(select.select([], [self.wfd], [], max(0, deadline - time.monotonic()))[1],
                 f"timed out writing to {self.name}")
            data = data[os.write(self.wfd, data):]

    def send(self, name, payload):
        self.send_raw(Cbor.encode({name: payload}))

    def recv(self, timeout=TIMEOUT):
        """The next message as (name, payload), or None at a clean EOF."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                need(n <= 16 << 20, f"{self.name} sent a frame prefix of {n}")
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    msg = Cbor.decode(body)
                    need(isinstance(msg, dict) and len(msg) == 1, f"not an externally tagged message: {msg!r}")
                    return next(iter(msg.items()))
            left = deadline - time.monotonic()
            need(left > 0 and select.select([self.rfd], [], [], left)[0],
                 f"timed out after {timeout:.0f}s waiting for a frame from {self.name}{self.tail()}")
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                need(not self.buf, f"EOF inside a frame from {self.name}")
                return None
            self.buf += chunk

    def next(self, what, timeout=TIMEOUT, skip=("Credit",)):
        """The next message not in `skip`; EOF fails the check."""
        while True:
            m = self.recv(timeout)
            need(m is not None, f"EOF from {self.name} while expecting {what}{self.tail()}")
            if m[0] not in skip:
                return m

    def expect(self, name, timeout=TIMEOUT, skip=("Credit",)):
        m = self.next(name, timeout, tuple(s for s in skip if s != name))
        need(m[0] == name, f"expected {name} from {self.name}, got {m!r}")
        return m[1]

    def expect_eof(self):
        m = self.recv()
        need(m is None, f"expected EOF from {self.name}, got {m!r}")

    def close_link(self):
        if self.wfd is not None:
            os.close(self.wfd); self.wfd = None

    def wait(self, timeout=TIMEOUT):
        """Exit status (negative: killed by that signal), or None if still running."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
            elif time.monotonic() < deadline:
                time.sleep(0.01)
            else:
                break
        return self.status

    def expect_exit(self, code):
        st = self.wait()
        need(st == code, f"{self.name} should exit with status {code}, status is {st}{self.tail()}")

    def kill(self):
        if self.status is None:
            try: os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError: pass
            self.wait(5)
        self.close_link()
        if self.rfd is not None:
            os.close(self.rfd); self.rfd = None

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                lines = f.read().strip().splitlines()[-3:]
        except OSError:
            lines = []
        return ("; its log: " + " | ".join(lines)) if lines else ""

def component(**extra):
    return dict(name=COMPONENT, wasm=CTX.wasm, **extra)

def start_payload(name, comp=None, **fields):
    return dict(name=name, uid=secrets.token_hex(6), component=COMPONENT,
                components=[comp or component()], tree_id=CTX.tree, **fields)

class Actor(Proc):
    """An actor sent `Start` (any extra `StartActor` fields as keywords)."""

    def __init__(self, name, comp=None, handed=(), wait_ready=True, **fields):
        super().__init__(name, handed=handed)
        self.next_id = 1
        self.send("Start", start_payload(name, comp, **fields))
        if wait_ready:
            self.ready = self.expect("Ready", TIMEOUT if CTX.warm else FIRST_TIMEOUT)
            CTX.warm = True

    def call(self, func, args=None, id=None):
        if id is None:
            id, self.next_id = self.next_id, self.next_id + 1
        self.send("Call", {"id": id, "func": func, "args": args})
        return id

    def answer(self, id):
        """The next answer, which must be to call `id`: (name, payload)."""
        m = self.next(f"the answer to call {id}")
        need(m[0] in ("Return", "CallFailed") and m[1]["id"] == id, f"expected the answer to call {id}, got {m!r}")
        return m

    def returns(self, func, args=None):
        name, p = self.answer(self.call(func, args))
        need(name == "Return", f"{func}({args!r}) should return, got {name} {p!r}")
        return p["value"]

    def fails(self, func, args=None, kind=None):
        name, p = self.answer(self.call(func, args))
        need(name == "CallFailed", f"{func}({args!r}) should fail, got {name} {p!r}")
        need(kind is None or p["error"].get("kind") == kind, f"{func}: kind should be {kind}: {p['error']!r}")
        return p["error"]

    def cancel(self, by="parent.py"):
        self.send("Cancel", {"by": by})


# ---------------------------------------------------------- the checks ----

CHECKS = []

def check(name):
    def deco(fn):
        CHECKS.append((name, fn)); return fn
    return deco

def expect_cancelled(p, id):
    name, m = p.answer(id)
    need(name == "CallFailed" and m["error"]["kind"] == "cancelled", f"call {id} should be cancelled: {name} {m!r}")

def expect_protocol_failure(p, actor_name=None):
    err = p.expect("Failed")["error"]
    need(err.get("kind") == "protocol", f"Failed should be of kind protocol: {err!r}")
    if actor_name is not None:
        need(err.get("actor_name") == actor_name, f"Failed should name actor {actor_name!r}: {err!r}")
        need(err.get("message", "").startswith("protocol error from parent"), f"message: {err.get('message')!r}")
    p.expect_exit(65)
    return err

@check("start-minimal")
def _():
    p = Proc("minimal")
    p.send("Start", {"name": "minimal", "uid": "u-minimal", "component": COMPONENT,
                     "components": [{"name": COMPONENT, "wasm": CTX.wasm}]})
    ready = p.expect("Ready", FIRST_TIMEOUT)
    CTX.warm = True
    need(ready == {"pid": p.pid}, f"Ready {ready!r} should carry the process's pid {p.pid}")
    p.close_link()                                  # a daemon whose link closed: exit 0
    p.expect_eof(); p.expect_exit(0)

@check("call-add")
def _():
    p = Proc("adder")
    p.send("Start", start_payload("adder"))
    p.send("Call", {"id": 1, "func": "add", "args": [2, 40]})                    # before Ready
    p.send("Call", {"id": 2, "func": "add", "args": {"a": -5, "b": 2 ** 40}})     # by name
    p.send("Call", {"id": 3, "func": "add", "args": [-(2 ** 62), -(2 ** 62)]})
    p.expect("Ready")
    for id, want in ((1, 42), (2, 2 ** 40 - 5), (3, -(2 ** 63))):
        m = p.expect("Return")
        need(m == {"id": id, "value": want}, f"call {id}: expected Return {want}, got {m!r}")

@check("bad-args-and-missing-export")
def _():
    p = Actor("badargs")
    msg = p.fails("add", [1, "x"], "bad-args")["message"]
    need("`add`" in msg and "`b`" in msg, f"the message should name `add` and `b`: {msg!r}")
    p.fails("no-such-function", [], "no-such-export")
    need(p.returns("add", [1, 1]) == 2, "the actor should keep serving")

def stream_until_done(p, cid, credit_every=None):
    """Collect a context's stream until ContextDone, returning credit like a receiver."""
    got, pending = [], 0
    while True:
        m = p.recv()
        need(m is not None, f"EOF before ContextDone{p.tail()}")
        if m[0] == "Stream":
            got.append(Cbor.decode(m[1]["data"])); pending += 1
            if credit_every and pending == credit_every:
                p.send("Credit", {"cid": cid, "n": pending}); pending = 0
        elif m[0] == "ContextDone":
            need(m[1]["cid"] == cid, f"ContextDone for another context: {m!r}")
            return got, m[1]["outcome"]
        else:
            need(m[0] in ("Credit", "StreamEnd"), f"unexpected {m!r}")

@check("status")
def _():
    p = Actor("statused")
    need(p.returns("add", [1, 1]) == 2, "add")
    p.send("OpenContext", {"id": 5, "func": "wait-for-cancel", "args": []})
    p.expect("Started")
    p.send("Status", {"id": 9})
    rep = p.expect("StatusReport")
    need(rep["id"] == 9 and len(rep["actors"]) == 1, f"one actor, id 9: {rep!r}")
    me = rep["actors"][0]
    fields = {"name", "uid", "parent_uid", "depth", "pid", "component", "backend", "host", "state", "calls",
              "contexts", "peers", "served", "uptime_ms", "cpu_ms", "rss_bytes", "wasm_bytes"}
    need(set(me) == fields, f"ActorStatus fields: {sorted(me)}")
    want = {"name": "statused", "state": "running", "calls": 0, "contexts": 1, "served": 1, "pid": p.pid}
    need(all(me[k] == v for k, v in want.items()), f"status {me!r} should have {want!r}")
    need(isinstance(me["rss_bytes"], int) and me["rss_bytes"] > 0, f"rss of a process: {me!r}")
    p.send("CancelContext", {"cid": 5, "by": "parent.py"})

@check("context-echo-half-close")
def _():
    p = Actor("echoer")
    p.send("OpenContext", {"id": 7, "func": "echo-ctx", "args": [41]})
    st = p.expect("Started")
    need(st["cid"] == 7 and isinstance(st["value"], bytes) and Cbor.decode(st["value"]) == 42,
         f"Started should be cid 7 with bytes holding CBOR 42: {st!r}")
    msgs = [f"msg-{i}" for i in range(5)] + [[1, {"k": None}], -7]
    for m in msgs:
        p.send("Stream", {"cid": 7, "data": Cbor.encode(m)})
    p.send("StreamEnd", {"cid": 7})                 # half-close right away
    got, outcome = stream_until_done(p, 7)
    need(got == msgs, f"echoes {got!r} != sent {msgs!r}")
    need(outcome == {"Returned": len(msgs)}, f"outcome: {outcome!r}")

@check("context-cancel-and-failed-open")
def _():
    p = Actor("ctx")
    p.send("OpenContext", {"id": 1, "func": "wait-for-cancel", "args": []})
    p.expect("Started")
    p.send("CancelContext", {"cid": 1, "by": "parent.py", "error": None})
    done = p.expect("ContextDone")
    need(done == {"cid": 1, "outcome": {"Cancelled": {"by": "parent.py"}}}, f"ContextDone: {done!r}")
    p.send("OpenContext", {"id": 2, "func": "add", "args": [1, 2]})   # not a context export
    m = p.recv()
    need(m and m[0] == "ContextDone" and "Failed" in m[1]["outcome"], f"expected ContextDone{{Failed}} without Started: {m!r}")

def open_consumer(name, ms):
    p = Actor(name)
    p.send("OpenContext", {"id": 1, "func": "consume-after", "args": [ms]})
    need(p.expect("Started")["cid"] == 1, "Started for cid 1")
    return p

@check("flow-control-1024-allowed")
def _():
    p = open_consumer("consumer", 1000)
    for _ in range(1024):                           # the whole initial credit, at once
        p.send("Stream", {"cid": 1, "data": Cbor.encode(1)})
    c = p.expect("Credit", skip=())                 # once its consumer took 512
    need(c["cid"] == 1 and 0 < c["n"] <= 1024, f"Credit: {c!r}")
    for _ in range(c["n"]):                         # exactly the credit given back
        p.send("Stream", {"cid": 1, "data": Cbor.encode(1)})
    p.send("StreamEnd", {"cid": 1})
    done = p.expect("ContextDone")                  # consume-after sums what it got
    need(done == {"cid": 1, "outcome": {"Returned": 1024 + c["n"]}}, f"ContextDone: {done!r}")
    need(p.wait(0) is None, "the actor should still run")

@check("flow-control-1025-overrun")
def _():
    p = open_consumer("overrun", 20000)
    for i in range(1025):
        p.send("Stream", {"cid": 1, "data": Cbor.encode(i)})
    expect_protocol_failure(p, "overrun")

@check("flow-control-parent-gives-credit")
def _():
    p = Actor("producer")
    p.send("OpenContext", {"id": 1, "func": "produce", "args": [3000]})
    p.expect("Started")
    p.send("Stream", {"cid": 1, "data": Cbor.encode("go")})   # produce starts on a first message
    n = 0
    while True:                                     # no credit from us: it stops at 1,024
        try:
            m = p.recv(1.0)
        except Fail:
            break
        need(m and m[0] == "Stream", f"unexpected {m!r}")
        n += 1
    need(n == 1024, f"without credit the child sent {n} messages, not 1024")
    p.send("Credit", {"cid": 1, "n": 1024})
    got, outcome = stream_until_done(p, 1, credit_every=512)
    need(n + len(got) == 3000 and outcome == {"Returned": 3000}, f"{n}+{len(got)} messages, outcome {outcome!r}")

def cancel_call_with(running):
    p = Actor(f"cancel-{running}")
    r, q = p.call(running), p.call("add", [1, 2])   # q is queued behind r, started or not
    p.send("CancelCall", {"id": q, "by": "parent.py"})
    t0 = time.monotonic()
    expect_cancelled(p, q)                          # the first answer: the queued call's
    need(time.monotonic() - t0 < 1.0, "the queued call was not answered at once")
    p.send("CancelCall", {"id": r, "by": "parent.py"})
    expect_cancelled(p, r)
    need(p.returns("add", [20, 22]) == 42, "add after the cancellations")

@check("cancel-call-sleep-forever")
def _():
    cancel_call_with("sleep-forever")

@check("cancel-call-spin")
def _():
    cancel_call_with("spin")

@check("trap-fails-actor")
def _():
    p = Actor("trapper")
    # One write, so that both adds are surely queued behind the trap.
    p.send_raw(*(Cbor.encode({"Call": {"id": i, "func": f, "args": a}})
                 for i, f, a in ((1, "trap", []), (2, "add", [1, 1]), (3, "add", [2, 2]))))
    name, m = p.answer(1)
    need(name == "CallFailed" and m["error"]["kind"] == "trap", f"trap: {name} {m!r}")
    need(m["error"]["message"].count("wasm trap:") <= 1, f"message repeats 'wasm trap:': {m['error']['message']!r}")
    seen = []
    for _ in range(3):      # Failed and both queued answers; their order is not checked
        m = p.recv()
        need(m is not None, f"EOF after {seen}: expected Failed and answers to calls 2 and 3")
        need(m[1].get("error", {}).get("kind") == "trap", f"{m!r} should carry the trap")
        seen.append("Failed" if m[0] == "Failed" else str(m[1]["id"]))
    need(sorted(seen) == ["2", "3", "Failed"], f"got {seen}")
    p.expect_eof(); p.expect_exit(1)

@check("cancel-actor-while-spinning")
def _():
    p = Actor("spinner")
    s = p.call("spin")
    p.cancel()
    # Cancelled while it spins, or, if the Cancel overtook it, never started.
    msg = p.answer(s)
    need(msg[0] == "CallFailed" and msg[1]["error"]["kind"] in ("cancelled", "actor-gone"), f"got {msg!r}")
    p.expect_eof(); p.expect_exit(0)

@check("run-in-actor")
def _():
    p = Actor("run-add", run={"id": 9, "func": "add", "args": [3, 4]})
    m = p.expect("Return")
    need(m == {"id": 9, "value": 7}, f"Return: {m!r}")
    p.expect_eof(); p.expect_exit(0)
    p = Actor("run-fail", run={"id": 0, "func": "fail", "args": ["on purpose"]})
    m = p.expect("CallFailed")
    need(m["id"] == 0 and m["error"]["kind"] == "guest" and "on purpose" in m["error"]["message"], f"CallFailed: {m!r}")
    p.expect_exit(1)
    p = Actor("run-sleep", run={"id": 0, "func": "sleep-forever", "args": []})
    name, m = p.answer(p.call("add", [1, 2], id=5))
    need(name == "CallFailed" and m["error"]["kind"] == "bad-args", f"a Call to a run-in-actor child: {name} {m!r}")
    p.cancel()
    expect_cancelled(p, 0)
    p.expect_exit(0)

@check("grants")
def _():
    d = tempfile.mkdtemp(dir=CTX.tmp)
    with open(os.path.join(d, "x"), "w") as f:
        f.write("hello from the host")
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        p = Actor("grants-fd", handed=[dfd], grants={"dirs": [{"host": d, "guest": "/data", "mode": "ro", "fd": 5}]})
    finally:
        os.close(dfd)
    need(p.returns("read-file", ["/data/x"]) == "hello from the host", "read-file through the handed descriptor")
    err = p.fails("write-file", ["/data/y", "nope"])
    need(not os.path.exists(os.path.join(d, "y")), f"write-file wrote through a read-only grant ({err!r})")
    p = Actor("grants-path", grants={"dirs": [{"host": d, "guest": "/data"}], "env": {"GREETING": "hi"},
                                     "connect": ["127.0.0.1:8080", "[::1]:443", "10.1.2.3", "10.0.0.0/8"],
                                     "bind": ["127.0.0.1:0", "[::1]:9000"], "args": ["--verbose"]})
    need(p.returns("read-file", ["/data/x"]) == "hello from the host", "read-file by path")
    need(p.returns("get-env", ["GREETING"]) == "hi", "get-env GREETING")
    need(p.returns("get-env", ["HOME"]) is None, "get-env of a variable not granted")

@check("limits-unknown-key-refused")
def _():
    expect_protocol_failure(Actor("badlimits", comp=component(limits={"memory": 1 << 20}), wait_ready=False))

@check("limits-memory")
def _():
    p = Actor("hog", comp=component(limits={"memory_bytes": 48 << 20}))
    msg = p.fails("hog", [200], "limit")["message"]
    need("memory" in msg and "48MiB" in msg, f"the message should name the limit and its value: {msg!r}")
    need(p.expect("Failed")["error"]["kind"] == "limit", "Failed should carry the limit error")
    p.expect_exit(1)

PROTOCOL_ERRORS = {         # after Ready: each must make the actor send Failed{protocol}, exit 65
    "undecodable-frame": lambda p: p.send_raw(b"\xff\xfe\xfd"),
    "child-only-message": lambda p: p.send("Ready", {"pid": os.getpid()}),
    "repeated-call-id": lambda p: (p.call("sleep-forever", id=1), p.call("add", [1, 2], id=1)),
    "oversized-frame": lambda p: os.write(p.wfd, struct.pack(">I", (16 << 20) + 1)),
    "eof-inside-frame": lambda p: (os.write(p.wfd, b"\x00\x00\x00\x10\xa1"), p.close_link()),
}

def protocol_error_check(name, provoke):
    @check(f"protocol-error-{name}")
    def _():
        p = Actor(f"bad-{name}")
        provoke(p)
        expect_protocol_failure(p, f"bad-{name}")

for _name, _provoke in PROTOCOL_ERRORS.items():
    protocol_error_check(_name, _provoke)

@check("protocol-error-before-start")
def _():
    p = Proc("nostart")
    p.send_raw(b"\x82\x01")                         # an array of two with one item
    err = expect_protocol_failure(p)
    need(err.get("actor_name") == "" and err.get("actor_uid") == "", f"actor fields should be empty: {err!r}")
    need(str(p.pid) in err.get("message", ""), f"the message should name pid {p.pid}: {err!r}")

@check("error-tree-relays")
def _():
    p = Actor("nest-root", run={"id": 0, "func": "nest", "args": [2, True]})
    node, path = p.expect("CallFailed")["error"], []
    while node["message"].startswith("relayed from actor"):
        need(len(node["causes"]) == 1, f"a relay node has exactly one cause: {node!r}")
        cause = node["causes"][0]
        need(node["message"] == f"relayed from actor '{cause['actor_name']}'", f"relay {node['message']!r} vs cause {cause['actor_name']!r}")
        need(node["kind"] == cause["kind"], f"relay kind {node['kind']} != its cause's {cause['kind']}")
        path.append(node["actor_name"]); node = cause
    path.append(node["actor_name"])
    need(node["message"] == "leaf failed on purpose" and node["causes"] == [], f"leaf: {node!r}")
    need(len(path) == 3 and path[0] == "nest-root", f"the path root -> leaf should have 3 actors: {path}")
    p.expect_exit(1)

def ppid_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

@check("forkserver")
def _():
    addr = f"tractor-parent-py-{os.getpid()}-{secrets.token_hex(4)}"
    z = Proc("zygote", sub="__zygote")
    z.send("Init", {"components": [component()], "addr": addr})
    need(z.expect("Listening", FIRST_TIMEOUT) == {"pid": z.pid}, f"Listening should carry the zygote's pid {z.pid}")
    with open(f"/proc/{z.pid}/comm") as f:
        need(f.read().strip() == "tractor-zygote", "the zygote names itself tractor-zygote")
    p = Actor("forker", spawn={"default": "forkserver", "zygote": addr})
    child = p.returns("spawn-on", ["forkserver"])
    need(isinstance(child, int) and child not in (p.pid, z.pid), f"spawn-on returned {child!r}")
    if os.path.exists(f"/proc/{child}"):           # usually gone already: spawn-on returns after it ended
        need(ppid_of(child) == z.pid, f"the forked actor's parent is {ppid_of(child)}, not the zygote")
    s = p.call("sleepers", [1, 1])                  # a child under the default policy, alive until cancelled
    deadline = time.monotonic() + TIMEOUT
    forked = []
    while not forked and time.monotonic() < deadline:
        forked = [q for q in tree_processes() if q != z.pid and ppid_of(q) == z.pid]
        time.sleep(0.01)
    need(forked, f"no process of the tree is a child of the zygote {z.pid}")
    p.send("CancelCall", {"id": s, "by": "parent.py"})
    expect_cancelled(p, s)
    p.cancel(); p.expect_exit(0)
    z.close_link()
    z.expect_eof(); z.expect_exit(0)

def tree_processes():
    """Pids of the live processes carrying our TRACTOR_TREE."""
    tag, pids = f"TRACTOR_TREE={CTX.tree}".encode(), []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    with open(f"/proc/{d}/stat") as s:
                        if s.read().rsplit(")", 1)[1].split()[0] != "Z":
                            pids.append(int(d))
        except OSError:
            pass
    return pids

def run_checks(only):
    failed = 0
    for name, fn in CHECKS:
        if only and only not in name:
            continue
        try:
            fn()
            print(f"ok {name}", flush=True)
        except Exception as e:
            failed += 1
            why = str(e) if isinstance(e, Fail) else "".join(traceback.format_exception_only(e)).strip()
            print(f"FAIL {name}: {why}", flush=True)
        finally:
            for p in Proc.ALL:
                p.kill()
            Proc.ALL.clear()
    deadline = time.monotonic() + 2                 # grandchildren die by their death signal
    while tree_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = tree_processes()
    print(f"FAIL no-leftover-processes: {left}" if left else "ok no-leftover-processes", flush=True)
    return failed + bool(left)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host-exe", required=True)
    ap.add_argument("--wasm", required=True)
    ap.add_argument("--only", help="run only the checks whose name contains this")
    a = ap.parse_args()
    CTX.host, CTX.wasm = os.path.abspath(a.host_exe), os.path.abspath(a.wasm)
    CTX.tree, CTX.warm = f"parent-py-{secrets.token_hex(4)}", False

    def watchdog(*_):
        raise Abort("the whole run took more than 15 minutes")
    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(900)
    failed = 1
    with tempfile.TemporaryDirectory(prefix="tractor-parent-py-") as tmp:
        CTX.tmp, CTX.cache = tmp, os.path.join(tmp, "cache")
        try:
            failed = run_checks(a.only)
        except Abort as e:
            print(f"FAIL run: {e}", flush=True)
        finally:
            signal.alarm(0)
            for p in Proc.ALL:
                p.kill()
            for pid in tree_processes():
                try: os.kill(pid, signal.SIGKILL)
                except ProcessLookupError: pass
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main()
