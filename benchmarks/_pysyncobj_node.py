"""A PySyncObj key-value node speaking the client protocol of `raft.runtime.node` (put and
status only), for `cluster_throughput.py --peer pysyncobj`. Runs in the benchmark's own venv
(PySyncObj is not a dependency of trio-raft); imports nothing from this project.

PySyncObj keeps its log in memory and never fsyncs; it replicates set() calls to the leader
(forwarding from followers) and answers once the command is applied on this node.
"""

from __future__ import annotations

import argparse
import socketserver
import struct
import sys

import msgpack
from pysyncobj import SyncObj, SyncObjConf, replicated

_LENGTH = struct.Struct(">I")


class KV(SyncObj):
    def __init__(self, address: str, partners: list[str]) -> None:
        super().__init__(address, partners, SyncObjConf(dynamicMembershipChange=False))
        self._data: dict[str, object] = {}

    @replicated
    def put(self, key: str, value: object) -> object:
        previous = self._data.get(key)
        self._data[key] = value
        return previous


def _read_exact(stream, size: int) -> bytes | None:  # type: ignore[no-untyped-def]
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(kv: KV, port: int) -> None:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                header = _read_exact(self.rfile, 4)
                if header is None:
                    return
                body = _read_exact(self.rfile, _LENGTH.unpack(header)[0])
                if body is None:
                    return
                request_id, op, args = msgpack.unpackb(body, raw=False)
                if op == "put":
                    key, value = args[0], args[1]
                    try:
                        previous = kv.put(key, value, sync=True, timeout=5)
                        answer = [request_id, "ok", [True, previous]]
                    except Exception as error:  # SyncObjException: no leader, timeout
                        answer = [request_id, "timeout", str(error)]
                elif op == "status":
                    leader = kv._getLeader()
                    answer = [
                        request_id,
                        "ok",
                        {"role": "LEADER" if kv._isLeader() else "FOLLOWER", "leader": str(leader)},
                    ]
                else:
                    answer = [request_id, "error", f"unsupported op {op!r}"]
                out = msgpack.packb(answer, use_bin_type=True)
                self.wfile.write(_LENGTH.pack(len(out)) + out)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", port), Handler) as server:
        print(f"READY {port}", flush=True)
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", required=True, help="host:port for raft")
    parser.add_argument("--partners", required=True, help="host:port,... the others")
    parser.add_argument("--client-port", type=int, required=True)
    arguments = parser.parse_args()
    kv = KV(arguments.self, arguments.partners.split(","))
    serve(kv, arguments.client_port)


if __name__ == "__main__":
    sys.exit(main())
