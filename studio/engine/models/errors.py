"""The one error every model loader raises, in a module of its own.

The registry imports the model families and the families raise this error;
keeping it here (and not in the registry) spares them an import circle.
"""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model could not be loaded or a model file cannot be used; the message names the file and what to do."""
