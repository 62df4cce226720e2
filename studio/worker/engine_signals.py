"""The engine's signals, declared once for each face it has.

The engine thread's worker, the UI's client of it, a studio server's client and the switch between the two all
speak the same signals, so the window connects to whichever it has without knowing which.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class EngineSignals(QObject):
    status = Signal(str)
    ready = Signal(object)  # EngineCatalog
    start_failed = Signal(str)
    model_loaded = Signal(object)  # ModelChoice
    step = Signal(object)  # StepPreview
    finished = Signal(object)  # JobResult
    failed = Signal(object)  # JobFailure (cancelled runs too)
    described = Signal(int, str)  # token, what the loaded model makes of a prompt ("" when it cannot say)
    adapters_listed = Signal(object)  # AdapterCatalog: LoRAs, embeddings, ControlNets, upscalers
    upscale_progress = Signal(object)  # UpscaleProgress, after each tile
    upscale_finished = Signal(object)  # UpscaleResult
    upscale_failed = Signal(object)  # JobFailure (a cancelled upscale too)


ENGINE_SIGNALS = ("status", "ready", "start_failed", "model_loaded", "step", "finished", "failed", "described",
                  "adapters_listed", "upscale_progress", "upscale_finished", "upscale_failed")
