"""Ready-made state machines implementing `raft.StateMachine`.

`KVStore` is a replicated key-value store: keys are strings, values are JSON values, and clients
send it commands made by `encode_get`, `encode_put`, `encode_delete` and `encode_cas` (the wire
format is specified in `statemachines._kv_codec`).
"""

from statemachines._kv import KVResult, KVStore
from statemachines._kv_codec import (
    KV_FORMAT_VERSION,
    KV_MAX_KEY_BYTES,
    KV_MAX_VALUE_DEPTH,
    JSONValue,
    KVCommand,
    KVCompareAndSet,
    KVDelete,
    KVGet,
    KVPut,
    MalformedCommand,
    decode_command,
    encode_cas,
    encode_command,
    encode_delete,
    encode_get,
    encode_put,
)
from statemachines._kv_snapshot import KV_SNAPSHOT_VERSION

__all__ = [
    "KV_FORMAT_VERSION",
    "KV_MAX_KEY_BYTES",
    "KV_MAX_VALUE_DEPTH",
    "KV_SNAPSHOT_VERSION",
    "JSONValue",
    "KVCommand",
    "KVCompareAndSet",
    "KVDelete",
    "KVGet",
    "KVPut",
    "KVResult",
    "KVStore",
    "MalformedCommand",
    "decode_command",
    "encode_cas",
    "encode_command",
    "encode_delete",
    "encode_get",
    "encode_put",
]
