"""The maintenance core a node wraps: declared indicators, their samples in the store, their predictions.

Public API:
    ConditionMonitor(store, indicators)
    .record(asset, name, seq, t_s, value) -> Prediction   store the sample, then judge its indicator
    .reset(asset, name, seq, t_s, note)                   maintenance done: the trend starts again
    .predict(key) -> Prediction;  .predictions() -> list[Prediction] (declaration order)
    .next_seq(asset, name) -> int                         the seq after the stored one (0 for a new indicator)
    .state() -> list[dict]                                each indicator's fields and its prediction, as JSON
                                                          values (a non-finite number is None)
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict

from cell_control.maintenance.indicator import Indicator, Level
from cell_control.maintenance.store import ConditionStore, ConditionStoreError
from cell_control.maintenance.trend import Prediction, predict


class ConditionMonitor:
    def __init__(self, store: ConditionStore, indicators: Iterable[Indicator]) -> None:
        self.store = store
        self.indicators: dict[str, Indicator] = {}
        for indicator in indicators:
            if indicator.key in self.indicators:
                raise ValueError(f'indicator {indicator.key} is declared twice')
            self.indicators[indicator.key] = indicator

    def _declared(self, key: str) -> Indicator:
        if key not in self.indicators:
            raise ConditionStoreError(f'unknown indicator {key!r}; declared: {", ".join(self.indicators) or "none"}')
        return self.indicators[key]

    def record(self, asset: str, name: str, seq: int, t_s: float, value: float) -> Prediction:
        indicator = self._declared(f'{asset}/{name}')
        self.store.record(asset, name, seq, t_s, value)
        return self.predict(indicator.key)

    def reset(self, asset: str, name: str, seq: int, t_s: float, note: str) -> None:
        self._declared(f'{asset}/{name}')
        self.store.reset(asset, name, seq, t_s, note)

    def predict(self, key: str) -> Prediction:
        indicator = self._declared(key)
        return predict(indicator, self.store.history(indicator.asset, indicator.name, last=indicator.window))

    def predictions(self) -> list[Prediction]:
        return [self.predict(key) for key in self.indicators]

    def next_seq(self, asset: str, name: str) -> int:
        self._declared(f'{asset}/{name}')
        last = self.store.last_seq(asset, name)
        return 0 if last is None else last + 1

    def state(self) -> list[dict]:
        """Return {'indicator': fields, 'prediction': ...} per indicator in declaration order, JSON-ready."""
        def plain(value: object) -> object:
            if isinstance(value, Level):
                return value.name
            return None if isinstance(value, float) and not math.isfinite(value) else value
        return [{'indicator': self.indicators[p.key].as_parameters(),
                 'prediction': {name: plain(value) for name, value in asdict(p).items()}}
                for p in self.predictions()]
