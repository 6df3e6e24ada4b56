"""Parameter descriptors with a description and a range, as every node of the cell declares them."""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


def descriptor(text: str, low: float | None = None, high: float | None = None, integer: bool = False,
               read_only: bool = True) -> ParameterDescriptor:
    result = ParameterDescriptor(description=text, read_only=read_only)
    if low is not None and high is not None:
        if integer:
            result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            result.floating_point_range = [FloatingPointRange(from_value=low, to_value=high)]
    return result
