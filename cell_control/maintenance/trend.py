"""Robust trend of a condition indicator and when it will cross its limit, on the conservative side.

Public API:
    fit_trend(x, y, confidence) -> Trend      Theil-Sen line (scipy.stats.theilslopes) with the slope's
                                              confidence interval; `level` is the fitted value at the last x
    predict(indicator, history) -> Prediction level OK / WARN / ERROR, "limit expected in N parts / H hours"

The prediction (x is the part number for basis 'part', hours for basis 'hour'):
- ERROR when the fitted value at the newest sample is at or past the limit (with fewer than min_samples:
  when their median is), so one outlier neither raises nor clears it.
- Otherwise the pessimistic line: the bound of the slope's interval toward the limit, through the samples'
  median point (as theilslopes places its own line). Where it meets the limit is the predicted crossing;
  WARN when that is within the indicator's warn horizon. A pessimistic slope pointing away from the limit
  predicts no crossing.
- Hours for a part-based indicator come from the median time between its recent samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import theilslopes

from cell_control.maintenance.indicator import Indicator, Level
from cell_control.maintenance.store import History


@dataclass(frozen=True)
class Trend:
    slope: float
    slope_low: float
    slope_high: float
    intercept: float
    level: float  # fitted value at the newest x
    x_center: float
    y_center: float


def fit_trend(x: np.ndarray, y: np.ndarray, confidence: float) -> Trend:
    """Fit a Theil-Sen line with the `confidence` interval of its slope (at least 3 distinct x)."""
    if len(x) != len(y) or len(np.unique(x)) < 3:
        raise ValueError(f'a trend needs at least 3 samples at distinct x, got {len(np.unique(x))}')
    result = theilslopes(y, x, alpha=confidence)
    slope, intercept = float(result.slope), float(result.intercept)
    return Trend(slope, float(result.low_slope), float(result.high_slope), intercept,
                 intercept + slope * float(x[-1]), float(np.median(x)), float(np.median(y)))


@dataclass(frozen=True)
class Prediction:
    key: str
    level: Level
    message: str
    samples: int
    value: float  # fitted (or median) value now; NaN without samples
    slope: float  # per part or per hour; NaN without a fit
    parts_to_limit: float  # inf: no crossing predicted; NaN: unknown (hour basis)
    hours_to_limit: float


def _hours_per_part(history: History) -> float:
    steps = np.diff(history.seq)
    return float(np.median(np.diff(history.t_s) / steps)) / 3600.0 if len(steps) else float('nan')


def _format(value: float) -> str:
    return f'{value:.0f}' if value >= 10 else f'{value:.1f}'


def predict(indicator: Indicator, history: History) -> Prediction:
    """Judge the newest `indicator.window` samples of `history` (since the last reset)."""
    key, unit = indicator.key, indicator.unit
    recent = History(history.seq[-indicator.window:], history.t_s[-indicator.window:],
                     history.value[-indicator.window:])
    n = len(recent)
    if n < indicator.min_samples:
        value = float(np.median(recent.value)) if n else float('nan')
        if n and indicator.crossed(value):
            return Prediction(key, Level.ERROR, f'limit crossed: {value:.4g} {unit} (limit {indicator.limit:g})',
                              n, value, math.nan, 0.0, 0.0)
        return Prediction(key, Level.OK, f'{n} of {indicator.min_samples} samples for a trend', n, value,
                          math.nan, math.nan, math.nan)
    x = recent.seq.astype(float) if indicator.basis == 'part' else recent.t_s / 3600.0
    trend = fit_trend(x, recent.value, indicator.confidence)
    if indicator.crossed(trend.level):
        return Prediction(key, Level.ERROR, f'limit crossed: {trend.level:.4g} {unit} (limit {indicator.limit:g})',
                          n, trend.level, trend.slope, 0.0, 0.0)
    toward = 1.0 if indicator.direction == 'above' else -1.0
    pessimistic = trend.slope_high if toward > 0 else trend.slope_low
    if pessimistic * toward <= 0.0:
        to_limit = math.inf
    else:
        now = trend.y_center + pessimistic * (x[-1] - trend.x_center)
        to_limit = max(0.0, (indicator.limit - now) / pessimistic)
    if indicator.basis == 'part':
        parts, hours = to_limit, to_limit * _hours_per_part(recent)
    else:
        parts, hours = math.nan, to_limit
    per = 'part' if indicator.basis == 'part' else 'h'
    if to_limit <= indicator.warn_horizon:
        when = f'{_format(parts)} parts / {_format(hours)} hours' if indicator.basis == 'part' else \
            f'{_format(hours)} hours'
        return Prediction(key, Level.WARN, f'limit expected in {when}: {trend.level:.4g} {unit}, '
                          f'{trend.slope:+.3g} {unit}/{per} (limit {indicator.limit:g})',
                          n, trend.level, trend.slope, parts, hours)
    return Prediction(key, Level.OK, f'{trend.level:.4g} {unit}, {trend.slope:+.3g} {unit}/{per}: no limit within '
                      f'{indicator.warn_horizon:g} {indicator.horizon_unit}', n, trend.level, trend.slope, parts, hours)
