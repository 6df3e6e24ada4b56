"""Lock-step of the simulation with its controllers: the world waits for slow nodes instead of running ahead.

Two of them. `CellLockstep`: every node of the cell on simulated time reports the simulated time its executor
has reached (`cell.signals.ClockReporter`, from the shared node main), and the simulation leads the slowest by
at most a few tenths of a second, so a cell run faster than real time (`--rtf max`, a busy machine) sees the
same sequence of events as at 1x instead of a coordinator or fleet that falls behind the world and times out on
it. Gazebo has nothing like it (it runs at 1x or slower). `WeldLockstep` is the fine one for the 500 Hz weld
loop:

The weld adjuster stamps every setpoint with the stamp of the seam sample it answers (DESIGN §7), so the
simulation knows how far behind the loop is. Run faster than the controllers can follow (`--rtf max` on a busy
machine), a free-running simulation would outrun them: samples queue up, age past the adjuster's limit or drop
out of the best-effort queue, and the weld fails with SEAM_LOST for reasons no real cell has. With the lock-step
the simulation may lead the last answered sample by `max_lead_s` of simulated time; beyond that it waits, at
most `patience_s` of wall time per wait. It engages only once the adjuster has answered in the current weld
(from the arc command on, so the run-up before the arc strikes counts)
(outside a weld nobody answers), and a wait that runs out of patience lets the world go on free-running until
the next answer: a dead or stopped adjuster must not freeze the world, its silence is for the cell to detect.
"""
from __future__ import annotations

import math

from cell_control.cell.signals import positive_seconds


class CellLockstep:
    """Decide whether the simulation may step on, from the simulated times the cell's nodes report reaching.

    A node counts from its first report; the `expected` ones (the nodes the bring-up starts) count from the
    start as having reached 0 s, so the world holds at `max_lead_s` until each has joined: at full speed it would
    otherwise run for tens of simulated seconds while processes still import, and the first part's timing would
    depend on how fast the machine starts them. The world steps past `now` only while each counted node has
    reached `now - max_lead_s`; a wait longer than `patience_s` of wall time (`bringup_s` while an expected node
    has not reported yet) drops the nodes still behind (stopped, crashed, restarting, never started: their
    silence is for the cell to detect) until they report again.
    """

    def __init__(self, max_lead_s: float, patience_s: float, expected: tuple[str, ...] = (),
                 bringup_s: float = 60.0) -> None:
        self.max_lead_s = positive_seconds('max_lead_s', max_lead_s)
        self.patience_s = positive_seconds('patience_s', patience_s)
        self.bringup_s = positive_seconds('bringup_s', bringup_s)
        self._reached: dict[str, float] = dict.fromkeys(expected, 0.0)
        self._unheard = set(expected)
        self.waits = 0      # how often the simulation had to wait (for diagnostics)
        self.gave_up = 0    # waits that ran out of patience

    def reached(self, node: str, sim_s: float) -> None:
        """Take a node's report; a clock that went back (a restarted world) is taken as it comes."""
        if math.isfinite(sim_s):
            self._reached[node] = sim_s
            self._unheard.discard(node)

    def laggards(self, sim_now_s: float) -> list[str]:
        """Return the nodes that stepping past `sim_now_s` would lead by more than `max_lead_s`, slowest first."""
        behind = [(s, node) for node, s in self._reached.items() if self._behind(s, sim_now_s)]
        return [node for _, node in sorted(behind)]

    def must_wait(self, sim_now_s: float) -> bool:
        """Tell whether a node is behind (`laggards` without the list: this is asked before every step)."""
        return any(self._behind(s, sim_now_s) for s in self._reached.values())

    def _behind(self, reached_s: float, sim_now_s: float) -> bool:
        return sim_now_s - reached_s > self.max_lead_s + 1e-9

    def wait_limit_s(self, sim_now_s: float) -> float:
        """Return how long a wait at `sim_now_s` may last: `bringup_s` while a node behind has not reported yet."""
        return self.bringup_s if self._unheard.intersection(self.laggards(sim_now_s)) else self.patience_s

    def waited(self, in_time: bool, sim_now_s: float) -> list[str]:
        """Count one wait; return the nodes dropped because it ran out of patience."""
        self.waits += 1
        if in_time:
            return []
        self.gave_up += 1
        dropped = self.laggards(sim_now_s)
        for node in dropped:
            del self._reached[node]
            self._unheard.discard(node)
        return dropped

    @property
    def nodes(self) -> int:
        return len(self._reached)


class WeldLockstep:
    """Decide whether the simulation may take its next step, from the stamps of the adjuster's answers."""

    def __init__(self, max_lead_s: float, patience_s: float) -> None:
        self.max_lead_s = positive_seconds('max_lead_s', max_lead_s)
        self.patience_s = positive_seconds('patience_s', patience_s)
        self._answered_s: float | None = None   # stamp of the newest answered sample of this weld
        self.waits = 0                           # how often the simulation had to wait (for diagnostics)
        self.gave_up = 0                         # waits that ran out of patience

    @property
    def engaged(self) -> bool:
        return self._answered_s is not None

    def answered(self, sample_stamp_s: float, welding: bool) -> None:
        """Take a setpoint's stamp (its sample's); only answers during a weld engage the lock-step."""
        if welding and math.isfinite(sample_stamp_s):
            self._answered_s = max(sample_stamp_s, self._answered_s if self._answered_s is not None else -math.inf)

    def weld_ended(self) -> None:
        self._answered_s = None

    def must_wait(self, sim_now_s: float) -> bool:
        """Tell whether stepping past `sim_now_s` would lead the last answer by more than `max_lead_s`."""
        return self._answered_s is not None and sim_now_s - self._answered_s > self.max_lead_s + 1e-9

    def waited(self, in_time: bool) -> None:
        """Count one wait; one that ran out of patience releases the world until the next answer."""
        self.waits += 1
        if not in_time:
            self.gave_up += 1
            self._answered_s = None
