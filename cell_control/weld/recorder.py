"""The weld record of a part, written before its verdict is committed, so that the two are one fact.

The coordinator commits a weld's verdict to the part ledger only after `commit()` has stored the record
(issue 8: a crash between the two must never leave a part good without its record). After a restart,
`recorded_verdicts()` answers for a part the ledger still shows as welding: a record means the weld ended and
was recorded, and its verdict is taken from the record itself (all samples good → 'good'), seam by seam.
"""
from __future__ import annotations

import logging

from cell_control.weld.records import WeldRecordStore
from cell_control.weld.trace import WeldTrace

LOG = logging.getLogger(__name__)


class WeldRecorder:
    """Collects the trace of the weld in progress and turns it into the part's record."""

    def __init__(self, store: WeldRecordStore, recipe_id: str) -> None:
        self.store, self.recipe_id = store, recipe_id
        self.trace: WeldTrace | None = None

    def begin(self, part_id: str, seam_id: str) -> WeldTrace:
        self.trace = WeldTrace(part_id, seam_id, self.recipe_id)
        return self.trace

    def commit(self, part_id: str, verdict: str, reason: str) -> str:
        """Store the record of the part's weld and return the verdict it supports.

        A weld with no sample answered by the adjuster has no record, and so cannot be good: 'good' then
        becomes 'rework'. Raises what the store raises (nothing is then committed to the ledger).
        """
        trace, self.trace = self.trace, None
        record = trace.record(verdict, {}) if trace is not None and trace.part_id == part_id else None
        if record is None:
            LOG.warning('part %s: no weld samples (%s: %s); no record', part_id, verdict, reason)
            return 'rework' if verdict == 'good' else verdict
        stored = self.store.append(record)
        LOG.info('weld record %d: part %s %s; chain head %s', stored.record_id, part_id, verdict, stored.hash)
        return verdict

    def recorded_verdicts(self, part_id: str) -> dict[str, str]:
        """Return the verdict each stored record of a part supports, by seam id (the newest record of a seam)."""
        return {stored.record.seam_id: 'good' if all(stored.record.good) else 'rework'
                for stored in self.store.part_records(part_id)}
