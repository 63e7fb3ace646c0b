"""The state gate: the newest STATE whose records are all committed goes out, and the
gate answers a signal handler that interrupts it on the main thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from target_anaplan.state_gate import StateGate


@dataclass
class Load:
    received: int = 0
    committed: int = 0
    batches: int = 0
    set_aside: int = 0


def test_the_newest_state_whose_records_are_committed_goes_out():
    load = Load()
    gate = StateGate({"s": load})
    for n in (1, 2, 3):
        load.received = 2 * n
        load.batches, load.set_aside = n - 1, 2 * (n - 1)
        gate.arrived({"n": n})
    assert gate.ready() is None
    load.committed = 4
    assert gate.ready() == {"n": 2}
    assert gate.ready() is None
    assert gate.holding
    load.committed = 6
    assert gate.ready() == {"n": 3}
    assert not gate.holding


def test_a_signal_handler_asking_while_the_gate_is_busy_gets_an_answer():
    """A SIGTERM handler asks for the state to emit; the signal may land while the main
    thread is inside the gate (here: while it reads a load's counts)."""
    answers: list[object] = []

    class Interrupted(Load):
        @property
        def received(self) -> int:
            if not answers:
                answers.append(gate.ready())  # what the handler does, on the same thread
            return 1

        @received.setter
        def received(self, value: int) -> None:
            pass

    gate = StateGate({"s": Interrupted(committed=1)})
    worker = threading.Thread(target=gate.arrived, args=({"n": 1},), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the gate deadlocked on a re-entrant call"
    assert answers == [None]
    assert gate.ready() == {"n": 1}
