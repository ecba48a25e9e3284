"""Linearizability checking of register histories: the WGL search, with info-op pruning.

Theory of operation
-------------------
A history is linearizable when its ops fit one order that respects real time (an op that
completed before another was invoked comes first) and is a legal run of a register (a read
returns the value, a cas finds its expected value). Registers do not interact, so each key is
checked on its own (Herlihy & Wing's locality).

The search is Wing & Gong's as refined by Lowe and used by Knossos and Porcupine ("WGL"). Each op
has a *call* entry at its invocation and a *return* entry at its completion, in one doubly
linked list sorted by time; ties put calls first, so an op invoked at the instant another
completes counts as concurrent with it (one clock reading cannot order two processes). The ops
whose calls precede the first return entry -- the *frontier* -- may go next; putting one in
order (*linearizing* it) unlinks its entries. Depth-first, with an explicit stack so that deep
histories cannot overflow the interpreter's, and a cache of visited states (linearized ops as an
int bitset, register value) so that no state is explored twice.

``fail`` ops never took effect and info reads observed nothing: both are dropped. An ``info`` op
may take effect at any time after its invocation, or never, so it gets no return entry and the
search succeeds once every *ok* op is in order. Since nothing forces a decision on an info op,
each one could double the states from its invocation to the end; these rules keep them in check,
each valid because it maps any valid order to one the search still tries:

- Normal form: an info op not immediately followed by an op observing the value it installed (a
  read of it, a cas expecting it) can be deleted from the order. So an info op is tried only
  when an op of the frontier observes its value, and no write may follow it; an info op that no
  op which could come after it ever observes is dropped up front (info cas chains included).
- Symmetry: invoked info ops of one class (same kind and values) are interchangeable, having no
  deadlines, so only the earliest unused one is tried; used ones form a prefix of their class.
  An info cas installing v is spent before an info write of v, which can do all it can.
- Dominance: per (ok ops linearized, value, right after an info op) the cache keeps the sets of
  info ops used; a state that has used a superset of a visited state's can do nothing more, and
  is pruned. An info op whose value nothing left observes counts as used.

Rules that make the common cases fast, with unique written values the most common of all:

- A read of the current value in the frontier is taken alone: it changes nothing and sheds a
  deadline. Likewise a write of a value nothing left observes, over a value nothing left
  observes: neither is visible to anyone.
- A value nothing left observes enables writes only, like any other such value: such states
  share one cache entry. A value that ok ops still observe but nothing left can install again is
  *pinned*: only its observers may go next, a cas among them only as the last.
- Candidates are tried ok ops first, earliest deadline first, then info ops serving the most
  urgent observer; this finds a valid order with little backtracking when there is one.

Before searching, an ok op that observed a value no op invoked before it completed installs
fails the history at once. Otherwise a failure reports the dead end that got furthest into the
history: the op whose deadline came, the op that installed the value there, and the ok ops that
still observe it when pinned, else the ok ops of the frontier. Those ops conflict given the
order the search chose before them, which need not make them a conflict on their own.

The problem is NP-complete; the cost grows with concurrency and with info ops whose values many
later ops observe, as in small value domains. Unique written values keep it near linear.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeAlias

import attrs

from ._history import Op, OpKind, Outcome, Scalar

__all__ = ["MODELS", "LinearizabilityResult", "Model", "check_linearizability"]


class Model(Protocol):
    """What a history means: how it splits into independent registers.

    Every register starts at None and follows register semantics: a write sets the value, a read
    is legal when it returns the value, a cas is legal when the value equals its expected value
    and then sets its new one. (The search's info-op pruning relies on these semantics, so a
    model chooses the registers, not the step function.)
    """

    def registers(self, ops: Sequence[Op]) -> list[tuple[str | None, list[Op]]]:
        """Split ``ops`` into ``(key, ops)`` per register, in a deterministic order."""
        ...


@attrs.frozen
class KvModel:
    """A map of independent registers, one per key; every op must name its key."""

    def registers(self, ops: Sequence[Op]) -> list[tuple[str | None, list[Op]]]:
        """Group ``ops`` by key, keys in sorted order; raise ``ValueError`` for a keyless op."""
        by_key: dict[str, list[Op]] = {}
        for op in ops:
            if op.key is None:
                raise ValueError(
                    f"the kv model needs a key on every op, but this one has none: "
                    f"{op.describe()}; use the register model for a single keyless register"
                )
            by_key.setdefault(op.key, []).append(op)
        return [(key, by_key[key]) for key in sorted(by_key)]


@attrs.frozen
class RegisterModel:
    """A single register: keys are ignored."""

    def registers(self, ops: Sequence[Op]) -> list[tuple[str | None, list[Op]]]:
        """All of ``ops`` as one register."""
        return [(None, list(ops))]


MODELS: Mapping[str, Model] = {"kv": KvModel(), "register": RegisterModel()}
"""The models ``check_linearizability`` accepts, by name."""


@attrs.frozen
class LinearizabilityResult:
    """The verdict of ``check_linearizability``.

    When ``ok`` is false: ``key`` is the register that has no valid order (None for the register
    model), ``counterexample`` the ops that could not be ordered, sorted by invocation time, and
    ``reason`` says why they could not.
    """

    ok: bool
    model: str
    key: str | None = None
    counterexample: tuple[Op, ...] = ()
    reason: str = ""

    def explain(self) -> str:
        """A human-readable verdict; for a violation, one counterexample op per line."""
        if self.ok:
            return f"linearizable under the {self.model} model"
        where = "" if self.key is None else f" at key {self.key!r}"
        lines = [f"not linearizable under the {self.model} model{where}: {self.reason}"]
        lines.extend(f"  {op.describe()}" for op in self.counterexample)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()


def check_linearizability(ops: Sequence[Op], model: str = "kv") -> LinearizabilityResult:
    """Decide whether ``ops`` is linearizable under the named model (a key of ``MODELS``).

    Ok ops took effect between invocation and completion; fail ops never did; info ops may have
    taken effect at any time after invocation, or never. Registers are checked in the model's
    order and the first one without a valid order is reported. Raises ``ValueError`` for an
    unknown model or ops the model cannot interpret.
    """
    chosen = MODELS.get(model)
    if chosen is None:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    for key, register_ops in chosen.registers(ops):
        search = _RegisterSearch(register_ops)
        failure = search.unexplained_observation() or search.run()
        if failure is not None:
            return LinearizabilityResult(
                ok=False,
                model=model,
                key=key,
                counterexample=tuple(search.ops[i] for i in failure.ops),
                reason=failure.reason,
            )
    return LinearizabilityResult(ok=True, model=model)


_READ, _WRITE, _CAS = 0, 1, 2
_NO_VALUE = -1
_NO_ENTRY = -1

# Per linearized op: its call entry, and the state before it, to resume from when its branch
# dies: candidates, how many were tried, value, after_info, useless info ops, ok ops and info
# ops linearized.
_Frame: TypeAlias = tuple[int, list[int], int, int, bool, int, int, int]


@attrs.frozen
class _Failure:
    """Why a register has no valid order: op indices, sorted by invocation, and prose."""

    ops: tuple[int, ...]
    reason: str


@attrs.frozen
class _DeadEnd:
    """How far a dead end got -- (entry of the deadline that came, ops in order) -- and why."""

    progress: tuple[int, int]
    failure: _Failure


class _RegisterSearch:
    """One register's sub-history compiled into flat arrays, and the WGL search over it.

    Values are interned to small ints (keyed by type too, so that JSON's ``1``, ``1.0`` and
    ``true`` stay distinct). Kept op ``i`` is ``ops[i]``; ``expects[i]`` is the value it needs
    the register to hold (a read's result, a cas's expected value) and ``installs[i]`` the value
    it leaves there, either ``_NO_VALUE`` where it has none.
    """

    def __init__(self, register_ops: Sequence[Op]) -> None:
        interned: dict[tuple[type, Scalar], int] = {}
        self.values: list[Scalar] = []

        def intern(value: Scalar) -> int:
            if (type(value), value) not in interned:
                interned[type(value), value] = len(self.values)
                self.values.append(value)
            return interned[type(value), value]

        self.initial = intern(None)
        candidates = [
            (op, _encode(op, intern))
            for op in register_ops
            if op.outcome is Outcome.OK
            or (op.outcome is Outcome.INFO and op.kind is not OpKind.READ)
        ]
        useful = _useful_info_ops(candidates)
        kept = [c for i, c in enumerate(candidates) if c[0].outcome is Outcome.OK or i in useful]
        self.ops = [op for op, _ in kept]
        self.kind = [kind for _, (kind, _, _) in kept]
        self.expects = [expects for _, (_, expects, _) in kept]
        self.installs = [installs for _, (_, _, installs) in kept]
        self.is_ok = [op.outcome is Outcome.OK for op in self.ops]
        # One extra slot, always set: the "earlier member" of the first op of an info class.
        self.linearized = bytearray(len(self.ops)) + b"\x01"
        # Per value: unlinearized ops (and ok ops) observing it, and installing it; info ops
        # installing it; ok ops observing it.
        self.observers_left = [0] * len(self.values)
        self.ok_observers_left = [0] * len(self.values)
        self.installers_left = [0] * len(self.values)
        self.info_installers = [0] * len(self.values)
        self.ok_observers: list[list[int]] = [[] for _ in self.values]
        for i in range(len(self.ops)):
            self._count(i, 1)
            if not self.is_ok[i]:
                self.info_installers[self.installs[i]] |= 1 << i
            elif self.expects[i] != _NO_VALUE:
                self.ok_observers[self.expects[i]].append(i)
        self._build_entries()

    def _build_entries(self) -> None:
        """Lay out the call/return list (entry 0 the head, the last the tail) and info classes.

        ``class_before[i]`` is the info op of i's class invoked just before it, or the extra
        always-linearized slot.
        """
        events = [(op.invoke_time, 0, i) for i, op in enumerate(self.ops)]
        events.extend(
            (op.complete_time, 1, i)
            for i, op in enumerate(self.ops)
            if op.complete_time is not None
        )
        events.sort()  # by time, calls before returns: see the module docstring
        count = len(events)
        self.entry_op = [_NO_ENTRY, *(i for _, _, i in events), _NO_ENTRY]
        self.entry_is_call = [False, *(phase == 0 for _, phase, _ in events), False]
        self.next = [*range(1, count + 2), _NO_ENTRY]
        self.prev = [_NO_ENTRY, *range(count + 1)]
        self.return_of = [_NO_ENTRY] * (count + 2)
        self.class_before = [len(self.ops)] * len(self.ops)
        call_of_op = [_NO_ENTRY] * len(self.ops)
        latest: dict[tuple[int, int, int], int] = {}
        for entry, (_, phase, op) in enumerate(events, start=1):
            if phase == 1:
                self.return_of[call_of_op[op]] = entry
                continue
            call_of_op[op] = entry
            if not self.is_ok[op]:
                info_class = (self.kind[op], self.expects[op], self.installs[op])
                self.class_before[op] = latest.get(info_class, len(self.ops))
                latest[info_class] = op

    def _count(self, op: int, delta: int) -> None:
        """Add ``delta`` to the unlinearized observer and installer counts ``op`` is in."""
        if self.expects[op] != _NO_VALUE:
            self.observers_left[self.expects[op]] += delta
            if self.is_ok[op]:
                self.ok_observers_left[self.expects[op]] += delta
        if self.installs[op] != _NO_VALUE:
            self.installers_left[self.installs[op]] += delta

    def _linearize(self, call: int) -> None:
        """Mark an op linearized: unlink its entries and uncount it."""
        self.linearized[self.entry_op[call]] = 1
        self._count(self.entry_op[call], -1)
        for entry in (call, self.return_of[call]):
            if entry != _NO_ENTRY:
                self.next[self.prev[entry]] = self.next[entry]
                self.prev[self.next[entry]] = self.prev[entry]

    def _unlinearize(self, call: int) -> None:
        """Undo ``_linearize``; entries went out call first, so they come back return first."""
        self.linearized[self.entry_op[call]] = 0
        self._count(self.entry_op[call], 1)
        for entry in (self.return_of[call], call):
            if entry != _NO_ENTRY:
                self.next[self.prev[entry]] = entry
                self.prev[self.next[entry]] = entry

    def unexplained_observation(self) -> _Failure | None:
        """The first ok op that observed a value nothing invoked before it completed installs."""
        first_installed: dict[int, float] = {self.initial: -math.inf}
        for op, installs in zip(self.ops, self.installs, strict=True):
            if installs != _NO_VALUE:
                earliest = first_installed.get(installs, math.inf)
                first_installed[installs] = min(earliest, op.invoke_time)
        for i, op in enumerate(self.ops):
            if op.complete_time is None or self.expects[i] == _NO_VALUE:
                continue
            if first_installed.get(self.expects[i], math.inf) > op.complete_time:
                return _Failure(
                    ops=(i,),
                    reason=f"the op below observed {self.values[self.expects[i]]!r}, which no "
                    "op invoked before it completed could have installed",
                )
        return None

    def run(self) -> _Failure | None:
        """Search for a valid order: None when there is one, else the furthest dead end."""
        remaining = sum(self.is_ok)
        if remaining == 0:
            return None
        entry_op, is_ok, expects, installs = self.entry_op, self.is_ok, self.expects, self.installs
        observers_left, info_installers = self.observers_left, self.info_installers
        value, after_info, useless, ok_bits, info_bits = self.initial, False, 0, 0, 0
        # (ok ops linearized, value, after_info) -> the sets of used or useless info ops seen.
        seen: dict[tuple[int, int, bool], list[int]] = {}
        frames: list[_Frame] = []
        candidates, tried = self._candidates(value, after_info), 0
        dead_end: _DeadEnd | None = None
        while True:
            if tried == len(candidates):
                dead_end = self._furthest(dead_end, value, frames)
                if not frames:
                    return dead_end.failure
                frame = frames.pop()
                self._unlinearize(frame[0])
                candidates, tried, value, after_info, useless, ok_bits, info_bits = frame[1:]
                remaining += is_ok[entry_op[frame[0]]]
                continue
            entry = candidates[tried]
            tried += 1
            op = entry_op[entry]
            new_value = value if installs[op] == _NO_VALUE else installs[op]
            new_useless = useless
            if expects[op] != _NO_VALUE and observers_left[expects[op]] == 1:
                new_useless |= info_installers[expects[op]]
            if is_ok[op]:
                new_ok, new_info, new_after_info = ok_bits | 1 << op, info_bits, False
            else:
                new_ok, new_info, new_after_info = ok_bits, info_bits | 1 << op, True
            # A value no unlinearized op observes any more enables exactly what any other such
            # value does -- writes only -- so such states meet in the cache as _NO_VALUE.
            if observers_left[new_value] == (expects[op] == new_value):
                state = (new_ok, _NO_VALUE, new_after_info)
            else:
                state = (new_ok, new_value, new_after_info)
            spent = new_info | new_useless
            visited = seen.get(state)
            if visited is None:
                seen[state] = [spent]
            elif any(earlier & ~spent == 0 for earlier in visited):
                # An explored state had every info op this one has left: it covers this one.
                continue
            else:
                visited.append(spent)
            frames.append(
                (entry, candidates, tried, value, after_info, useless, ok_bits, info_bits)
            )
            self._linearize(entry)
            value, after_info, useless = new_value, new_after_info, new_useless
            ok_bits, info_bits = new_ok, new_info
            remaining -= is_ok[op]
            if remaining == 0:
                return None
            candidates, tried = self._candidates(value, after_info), 0

    def _candidates(self, value: int, after_info: bool) -> list[int]:
        """The call entries of the ops worth trying next, in order, with ``value`` held.

        Alone, if the frontier has one: an ok read of ``value``, or an ok write nobody observes
        over a ``value`` nobody observes. Otherwise every op of the frontier the register
        accepts, except: a write right after an info op or over a pinned value, a cas but the
        last ok observer of a pinned value, an info op whose class has an earlier unused member
        or whose value no op of the frontier observes, an info write of a value an info cas here
        installs too (module docstring).
        """
        kind, expects, installs = self.kind, self.expects, self.installs
        is_ok, class_before, linearized = self.is_ok, self.class_before, self.linearized
        entry_op, entry_is_call, next_entry = self.entry_op, self.entry_is_call, self.next
        accepted: list[int] = []
        info_accepted: list[int] = []
        observed: set[int] = set()
        # Per value observed by an ok op of the frontier: the earliest deadline among those.
        urgency: dict[int, int] = {}
        entry = next_entry[0]
        observers_left = self.observers_left
        # Right after an info op the value is observed (that is why it went), never dead.
        value_is_dead = observers_left[value] == 0
        ok_observers_left = self.ok_observers_left[value]
        value_is_pinned = ok_observers_left > 0 and self.installers_left[value] == 0
        while entry_is_call[entry]:
            op = entry_op[entry]
            if kind[op] == _WRITE:
                if value_is_dead and is_ok[op] and observers_left[installs[op]] == 0:
                    return [entry]
                acceptable = not (after_info or value_is_pinned)
            else:
                if is_ok[op]:
                    deadline = self.return_of[entry]
                    urgency[expects[op]] = min(deadline, urgency.get(expects[op], deadline))
                observed.add(expects[op])
                if expects[op] != value:
                    acceptable = False
                elif kind[op] == _READ:
                    return [entry]
                else:
                    acceptable = not value_is_pinned or (is_ok[op] and ok_observers_left == 1)
            if acceptable and is_ok[op]:
                accepted.append(entry)
            elif acceptable and linearized[class_before[op]]:
                info_accepted.append(entry)
            entry = next_entry[entry]
        # Most urgent first: in practice this finds an order with little backtracking.
        accepted.sort(key=self.return_of.__getitem__)
        # An info cas installing v here does all an info write of v could, and the write stays
        # usable from any value later: spend the cas first.
        cas_installs = {
            installs[entry_op[entry]] for entry in info_accepted if kind[entry_op[entry]] == _CAS
        }
        # An info op serving the most urgent observer first, likewise.
        info_accepted.sort(key=lambda entry: urgency.get(installs[entry_op[entry]], len(self.next)))
        accepted.extend(
            entry
            for entry in info_accepted
            if installs[entry_op[entry]] in observed
            and (kind[entry_op[entry]] == _CAS or installs[entry_op[entry]] not in cas_installs)
        )
        return accepted

    def _furthest(self, best: _DeadEnd | None, value: int, frames: list[_Frame]) -> _DeadEnd:
        """Whichever dead end got further into the history: ``best`` or the current one.

        Further means a later deadline reached, then more ops in order. The ops at fault: the
        op whose deadline came, the op that installed ``value``, and the ok ops that still must
        observe ``value`` if it is pinned, else the ok ops of the frontier.
        """
        deadline = self.next[0]
        while self.entry_is_call[deadline]:
            deadline = self.next[deadline]
        progress = (deadline, len(frames))
        if best is not None and best.progress >= progress:
            return best
        involved = {self.entry_op[deadline]}
        installers = (self.entry_op[call] for call, *_ in reversed(frames))
        installer = next((op for op in installers if self.installs[op] != _NO_VALUE), None)
        if installer is not None:
            involved.add(installer)
        held = self.values[value]
        done = f"the longest order found puts {len(frames)} ops in order"
        if self.ok_observers_left[value] > 0 and self.installers_left[value] == 0:
            involved.update(i for i in self.ok_observers[value] if not self.linearized[i])
            reason = (
                f"{done}, leaving the register holding {held!r}; some op below still has to "
                f"observe {held!r}, but another must take effect first and overwrite it"
            )
        else:
            entry = self.next[0]
            while entry != deadline:
                if self.is_ok[self.entry_op[entry]]:
                    involved.add(self.entry_op[entry])
                entry = self.next[entry]
            reason = f"{done}, leaving the register holding {held!r}; none of these can come next"
        ops = sorted(involved, key=lambda i: (self.ops[i].invoke_time, i))
        return _DeadEnd(progress, _Failure(ops=tuple(ops), reason=reason))


def _encode(op: Op, intern: Callable[[Scalar], int]) -> tuple[int, int, int]:
    """``(kind, expects, installs)`` for ``op``, as ``_RegisterSearch`` stores them."""
    if isinstance(op.value, tuple):
        return _CAS, intern(op.value[0]), intern(op.value[1])
    if op.kind is OpKind.READ:
        return _READ, intern(op.value), _NO_VALUE
    return _WRITE, _NO_VALUE, intern(op.value)


def _useful_info_ops(candidates: Sequence[tuple[Op, tuple[int, int, int]]]) -> set[int]:
    """The indices of the info ops that some op which could follow them observes.

    An observer of value v is an ok read returning v or an ok cas expecting v that completes no
    earlier than the info op's invocation, or a useful info cas expecting v (which has no
    deadline). Any other info op can be deleted from every valid order (module docstring).
    """
    latest_ok_observer: dict[int, int] = {}
    info_by_installs: dict[int, list[int]] = {}
    for i, (op, (kind, expects, installs)) in enumerate(candidates):
        if op.complete_time is None:
            info_by_installs.setdefault(installs, []).append(i)
        elif kind != _WRITE:
            latest = latest_ok_observer.get(expects, op.complete_time)
            latest_ok_observer[expects] = max(latest, op.complete_time)
    useful: set[int] = set()
    pending: list[int] = []
    for installs, infos in info_by_installs.items():
        deadline = latest_ok_observer.get(installs)
        if deadline is not None:
            fresh = [i for i in infos if candidates[i][0].invoke_time <= deadline]
            useful.update(fresh)
            pending.extend(fresh)
    observed_by_info: set[int] = set()
    while pending:
        kind, expects, _ = candidates[pending.pop()][1]
        if kind == _CAS and expects not in observed_by_info:
            observed_by_info.add(expects)
            fresh = [j for j in info_by_installs.get(expects, ()) if j not in useful]
            useful.update(fresh)
            pending.extend(fresh)
    return useful
