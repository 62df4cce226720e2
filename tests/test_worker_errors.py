"""Engine errors become readable messages naming what to fix (no tracebacks for the user)."""

import torch

from studio.engine.models.registry import ModelLoadError
from studio.engine.request import RequestError
from studio.engine.runner import Cancelled, NonFiniteError
from studio.worker.engine_session import describe_failure


def test_each_engine_error_has_a_readable_message(capsys):
    assert describe_failure(1, Cancelled(3, 4)).cancelled
    failure = describe_failure(1, RequestError("steps", "must be a whole number from 1 to 1000, got 0"))
    assert failure.field == "steps" and "steps" in failure.message
    failure = describe_failure(1, NonFiniteError("the model produced NaN or infinite values at step 3"))
    assert "NaN" in failure.message and failure.field is None
    failure = describe_failure(1, ModelLoadError("could not load model 'x': bad checkpoint file"))
    assert failure.field == "model" and "bad checkpoint" in failure.message
    for oom in (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"), MemoryError()):
        assert describe_failure(1, oom).message.startswith("Out of memory")
    failure = describe_failure(1, ZeroDivisionError("division by zero"))
    assert failure.message == "The engine failed: ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in capsys.readouterr().err  # the details go to the log, not the window
