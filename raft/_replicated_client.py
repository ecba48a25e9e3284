"""`ReplicatedClient`: calls a `@replicated` class's methods through a running server.

``await client.incr(5)`` encodes the call, proposes it with ``server.apply`` and returns the
command's result as every replica computed it; a `@query` method runs on the local replica
through ``server.read`` (ReadIndex: linearizable by default). Only the server's public
`apply` and `read` are used, so any server with that shape will do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Protocol, TypeVar, cast

from raft._replicated import CommandError, _Method, encode_call, spec_of
from raft._replicated_codec import check_encodable, round_trip
from raft.core import RaftError

T = TypeVar("T")
R = TypeVar("R")
Q = TypeVar("Q")
P = ParamSpec("P")
Consistency = Literal["linearizable", "lease", "stale"]


class ReplicatedServer(Protocol):
    """What `ReplicatedClient` needs of a server: `raft.RaftServer` has it."""

    async def apply(self, command: bytes, *, timeout: float | None = None) -> object:
        """Propose `command`; the state machine's result once it is applied here."""
        ...

    async def read(
        self,
        query: Callable[[Any], Q],
        *,
        consistency: Consistency = "linearizable",
        timeout: float | None = None,
    ) -> Q:
        """Run `query(state_machine)` once that is consistent as asked."""
        ...


class CommandFailed(RaftError):
    """A command committed but did not complete: its `CommandError` result is `error`.

    For ``error.kind == "raised"`` the command raised ``error.exception`` on every replica
    (whatever it changed before raising stays changed); the other kinds mean the client and
    the replicas disagree about the class (a command only a newer version has, say)."""

    def __init__(self, method: str, error: CommandError) -> None:
        detail = f"{error.exception}: {error.message}" if error.exception else error.message
        super().__init__(f"{method}() failed ({error.kind}): {detail}")
        self.method = method
        self.error = error


class ReplicatedClient(Generic[T]):
    """Calls the `@command` and `@query` methods of `cls`, replicated by `server`.

    ``await client.incr(5)`` (any method by name; untyped) or ``await client.call(Counter.incr,
    5)`` (typed as the method is): a command is proposed through the log and returns its result,
    or raises `CommandFailed` for a `CommandError`; a query runs on the server's own replica
    with `consistency` (default ``"linearizable"``). Arguments and results are what msgpack
    encodes (tuples come back as lists): anything else is a `TypeError` before anything is
    proposed. The server's errors (`NotLeader`, `Timeout`, ...) pass through unchanged; after a
    `Timeout` a command may or may not have been applied.
    """

    def __init__(
        self,
        server: ReplicatedServer,
        cls: type[T],
        *,
        consistency: Consistency = "linearizable",
        timeout: float | None = None,
    ) -> None:
        if consistency not in ("linearizable", "lease", "stale"):
            raise ValueError(
                f"consistency must be linearizable, lease or stale, got {consistency!r}"
            )
        self._spec = spec_of(cls)
        self._cls = cls
        local = getattr(server, "state_machine", None)
        if local is not None and not isinstance(local, cls):
            raise TypeError(
                f"the server's state machine is a {type(local).__qualname__}, not a "
                f"{cls.__qualname__}"
            )
        self._server = server
        self._consistency: Consistency = consistency
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"<ReplicatedClient of {self._cls.__qualname__}>"

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        # Only reached for names the client itself lacks; read __dict__ directly so that a
        # half-built client (before __init__ set _spec) cannot recurse into here.
        spec = self.__dict__.get("_spec")
        method = spec.methods.get(name) if spec is not None else None
        if method is None:
            owner = spec.owner.__qualname__ if spec is not None else "ReplicatedClient"
            raise AttributeError(f"{owner} has no @command or @query {name!r}")

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._call(method, args, kwargs)

        call.__name__ = call.__qualname__ = name
        return call

    async def call(
        self, method: Callable[Concatenate[T, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Call `method` (``Class.method``, a `@command` or `@query` of this client's class)."""
        name = getattr(method, "__name__", None)
        found = self._spec.methods.get(name) if isinstance(name, str) else None
        if found is None or found.function is not method:
            raise TypeError(f"{method!r} is not a @command or @query of {self._cls.__qualname__}")
        return cast(R, await self._call(found, args, kwargs))

    async def _call(self, method: _Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if method.kind == "command":
            data = encode_call(method.function, *args, **kwargs)
            result = await self._server.apply(data, timeout=self._timeout)
            if isinstance(result, CommandError):
                raise CommandFailed(method.wire_name, result)
            return result
        try:
            method.signature.bind(None, *args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{method.wire_name}(): {error}") from None
        for position, value in enumerate(args):
            check_encodable(value, f"argument {position + 1} of {method.wire_name}()")
        for key, value in kwargs.items():
            check_encodable(value, f"argument {key!r} of {method.wire_name}()")
        # The query sees its arguments as a command would, decoded from msgpack.
        decoded_args = round_trip(list(args), "arguments")
        decoded_kwargs = round_trip(kwargs, "arguments")
        cls = self._cls

        def run(state_machine: object) -> Any:
            if not isinstance(state_machine, cls):
                raise TypeError(f"the server's state machine is not a {cls.__qualname__}")
            answer = method.function(state_machine, *decoded_args, **decoded_kwargs)
            # A copy: the caller must not hold a live reference into the replica's state.
            return round_trip(answer, f"the result of {method.wire_name}()")

        return await self._server.read(run, consistency=self._consistency, timeout=self._timeout)
