"""Predictive maintenance (issue 13): condition indicators, their store, robust trends and predictions; no rclpy."""
from cell_control.maintenance.indicator import Indicator, Level
from cell_control.maintenance.monitor import ConditionMonitor
from cell_control.maintenance.store import ConditionStore, ConditionStoreError, History
from cell_control.maintenance.trend import Prediction, Trend, fit_trend, predict

__all__ = ['ConditionMonitor', 'ConditionStore', 'ConditionStoreError', 'History', 'Indicator', 'Level',
           'Prediction', 'Trend', 'fit_trend', 'predict']
