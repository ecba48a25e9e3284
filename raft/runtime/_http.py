"""The KV node's HTTP API (an ASGI app; `python -m raft.runtime.node --http-port` serves it
with hypercorn, the optional ``http`` extra). See docs/cli.md for the routes.

A follower does not forward writes: it answers ``307 Temporary Redirect`` with ``Location`` set
to the same path on the leader's HTTP address (a 307 keeps the method and the body). When it
knows no leader, or not the leader's HTTP address, it answers 503 with ``{"error":
"not_leader", "leader": <id or null>}``.

``GET /metrics`` answers the Prometheus text format (`raft.runtime._metrics`) when
``prometheus-client`` is installed (the ``http`` extra), and 501 otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote

from raft.core import CommandTooLarge
from raft.core import NotLeader as CoreNotLeader
from raft.runtime._errors import Overloaded, SessionExpired, Timeout

MAX_BODY: Final = 1 << 20
CONSISTENCIES: Final = ("linearizable", "lease", "stale")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _HttpError(Exception):
    def __init__(
        self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


class KVHttpApp:
    """ASGI app over a `RaftServer` running a `statemachines.KVStore`.

    `http_addresses` maps node ids to their HTTP "host:port", for redirects to the leader.
    `status` returns the node's status as a JSON-able dict.
    """

    def __init__(
        self,
        server: Any,
        http_addresses: dict[int, str],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        from statemachines import encode_cas, encode_delete, encode_put  # noqa: PLC0415

        self.server = server
        self.http_addresses = http_addresses
        self.status = status
        self.encode_put = encode_put
        self.encode_delete = encode_delete
        self.encode_cas = encode_cas
        try:
            from raft.runtime import _metrics  # noqa: PLC0415
        except ImportError:  # the optional prometheus-client is missing
            self.metrics_registry: Any = None
        else:
            self.metrics_registry = _metrics.make_registry(server)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if (
            scope["path"] == "/metrics"
            and scope["method"] == "GET"
            and self.metrics_registry is not None
        ):
            from raft.runtime import _metrics  # noqa: PLC0415

            data = _metrics.render(self.metrics_registry)
            await _send(send, 200, data, _metrics.CONTENT_TYPE_LATEST.encode(), [])
            return
        try:
            status, body = await self._route(scope, receive)
            headers: list[tuple[bytes, bytes]] = []
        except _HttpError as error:
            status, body, headers = error.status, error.body, error.headers
        await _send(send, status, json.dumps(body).encode(), b"application/json", headers)

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        method: str = scope["method"]
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/v1/status":
            if method != "GET":
                raise _HttpError(405, {"error": "GET only"})
            return 200, self.status()
        if path == "/metrics":
            if method != "GET":
                raise _HttpError(405, {"error": "GET only"})
            raise _HttpError(
                501,
                {
                    "error": "metrics need prometheus-client: pip install 'trio-raft[http]'"
                    " (or pip install prometheus-client)"
                },
            )
        for prefix, handler in (("/v1/kv/", self._kv), ("/v1/cas/", self._cas)):
            if path.startswith(prefix) and len(path) > len(prefix):
                key = unquote(path[len(prefix) :])
                try:
                    return await handler(method, key, query, scope, receive)
                except CoreNotLeader as error:
                    raise self._redirect(error.leader_id, scope) from None
                except Timeout as error:
                    raise _HttpError(504, {"error": "timeout", "detail": str(error)}) from None
                except (Overloaded, SessionExpired) as error:
                    raise _HttpError(503, {"error": "overloaded", "detail": str(error)}) from None
                except (CommandTooLarge, ValueError, TypeError) as error:
                    raise _HttpError(400, {"error": "bad_request", "detail": str(error)}) from None
        raise _HttpError(404, {"error": "no such route", "path": path})

    def _redirect(self, leader: int | None, scope: Scope) -> _HttpError:
        address = self.http_addresses.get(leader) if leader is not None else None
        if address is None:
            return _HttpError(503, {"error": "not_leader", "leader": leader})
        location = f"http://{address}{quote(scope['path'])}"
        if scope.get("query_string"):
            location += "?" + scope["query_string"].decode("latin-1")
        return _HttpError(
            307,
            {"error": "not_leader", "leader": leader, "location": location},
            [(b"location", location.encode())],
        )

    async def _kv(
        self, method: str, key: str, query: dict[str, list[str]], scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            consistency = query.get("consistency", ["linearizable"])[-1]
            if consistency not in CONSISTENCIES:
                raise _HttpError(
                    400, {"error": f"consistency must be one of {', '.join(CONSISTENCIES)}"}
                )
            value = await self.server.read(lambda kv: kv.get(key), consistency=consistency)
            if value is None:
                return 404, {"key": key, "error": "no such key"}
            return 200, {"key": key, "value": value}
        if method == "PUT":
            value = await _json_body(receive)
            result = await self.server.apply(self.encode_put(key, value))
            return _result(result, {"key": key, "previous": result.value})
        if method == "DELETE":
            result = await self.server.apply(self.encode_delete(key))
            if result.ok and result.value is None:
                return 404, {"key": key, "error": "no such key"}
            return _result(result, {"key": key, "previous": result.value})
        raise _HttpError(405, {"error": "GET, PUT or DELETE"})

    async def _cas(
        self, method: str, key: str, query: dict[str, list[str]], scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        if method != "POST":
            raise _HttpError(405, {"error": "POST only"})
        body = await _json_body(receive)
        if not isinstance(body, dict) or set(body) != {"expected", "value"}:
            raise _HttpError(400, {"error": 'the body is {"expected": ..., "value": ...}'})
        result = await self.server.apply(self.encode_cas(key, body["expected"], body["value"]))
        if result.error is None and not result.ok:
            return 409, {"key": key, "ok": False, "value": result.value}
        return _result(result, {"key": key, "ok": True, "previous": result.value})


async def _send(
    send: Send,
    status: int,
    data: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _result(result: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if result.error is not None:
        raise _HttpError(400, {"error": "bad_request", "detail": result.error})
    return 200, body


async def _json_body(receive: Receive) -> Any:
    data = bytearray()
    while True:
        message = await receive()
        data += message.get("body", b"")
        if len(data) > MAX_BODY:
            raise _HttpError(413, {"error": f"the body is over {MAX_BODY} bytes"})
        if not message.get("more_body"):
            break
    try:
        return json.loads(data)
    except ValueError:
        raise _HttpError(400, {"error": "the body is not JSON"}) from None
