"""Ready-made state machines implementing `raft.StateMachine`.

`KVStore` is a replicated key-value store: keys are strings, values are JSON values, and clients
send it commands made by `encode_get`, `encode_put`, `encode_delete` and `encode_cas` (the wire
format is specified in `statemachines._kv_codec`).

The batteries (docs/batteries.md) speak versioned, canonical msgpack commands: `Counter`
(`counter_add`, `counter_get`, `counter_cas`) and `LockManager`, leased locks whose grants carry
strictly increasing fencing tokens, with expiry decided in log order from leader-stamped time
(`lock_acquire`, `lock_renew`, `lock_release`, `lock_holder`); `Ownership`, etcd-style elections
of one active worker with leases and terms (`ownership_campaign`, `ownership_keepalive`,
`ownership_resign`, `ownership_observe`); and `WorkQueue`, work queues with visibility timeouts
and claim tokens (`queue_enqueue`, `queue_claim`, `queue_ack`, `queue_release`).
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
from statemachines._ownership import (
    OWNERSHIP_FORMAT_VERSION,
    OWNERSHIP_SNAPSHOT_VERSION,
    Ownership,
    OwnershipResult,
    ownership_campaign,
    ownership_keepalive,
    ownership_observe,
    ownership_resign,
)
from statemachines._queue import (
    QUEUE_FORMAT_VERSION,
    QUEUE_SNAPSHOT_VERSION,
    QueueResult,
    WorkQueue,
    queue_ack,
    queue_claim,
    queue_enqueue,
    queue_release,
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
    "OWNERSHIP_FORMAT_VERSION",
    "OWNERSHIP_SNAPSHOT_VERSION",
    "QUEUE_FORMAT_VERSION",
    "QUEUE_SNAPSHOT_VERSION",
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
    "Ownership",
    "OwnershipResult",
    "QueueResult",
    "WorkQueue",
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
    "ownership_campaign",
    "ownership_keepalive",
    "ownership_observe",
    "ownership_resign",
    "queue_ack",
    "queue_claim",
    "queue_enqueue",
    "queue_release",
]
