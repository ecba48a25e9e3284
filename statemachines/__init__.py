"""Ready-made state machines implementing `raft.StateMachine`.

`KVStore` is a replicated key-value store: keys are strings, values are JSON values, and clients
send it commands made by `encode_get`, `encode_put`, `encode_delete` and `encode_cas` (the wire
format is specified in `statemachines._kv_codec`).

The batteries (docs/batteries.md) speak versioned, canonical msgpack commands: `Counter`
(`counter_add`, `counter_get`, `counter_cas`) and `LockManager`, leased locks whose grants carry
strictly increasing fencing tokens, with expiry decided in log order from leader-stamped time
(`lock_acquire`, `lock_renew`, `lock_release`, `lock_holder`).
"""

from statemachines._counter import (
    COUNTER_FORMAT_VERSION,
    COUNTER_SNAPSHOT_VERSION,
    Counter,
    CounterResult,
    counter_add,
    counter_cas,
    counter_get,
)
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
from statemachines._lock import (
    LOCK_FORMAT_VERSION,
    LOCK_SNAPSHOT_VERSION,
    LockManager,
    LockResult,
    lock_acquire,
    lock_holder,
    lock_release,
    lock_renew,
)

__all__ = [
    "COUNTER_FORMAT_VERSION",
    "COUNTER_SNAPSHOT_VERSION",
    "KV_FORMAT_VERSION",
    "KV_MAX_KEY_BYTES",
    "KV_MAX_VALUE_DEPTH",
    "KV_SNAPSHOT_VERSION",
    "LOCK_FORMAT_VERSION",
    "LOCK_SNAPSHOT_VERSION",
    "Counter",
    "CounterResult",
    "JSONValue",
    "KVCommand",
    "KVCompareAndSet",
    "KVDelete",
    "KVGet",
    "KVPut",
    "KVResult",
    "KVStore",
    "LockManager",
    "LockResult",
    "MalformedCommand",
    "counter_add",
    "counter_cas",
    "counter_get",
    "decode_command",
    "encode_cas",
    "encode_command",
    "encode_delete",
    "encode_get",
    "encode_put",
    "lock_acquire",
    "lock_holder",
    "lock_release",
    "lock_renew",
]
