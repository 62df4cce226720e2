"""Rectified-flow transformer families: SD 3.x, Flux.1, Z-Image (see studio/engine/flow.py for the maths).

Each family has a module with ``load_<family>(files: ModelFiles, device, dtype) -> FlowModel``; the
loader (load.py) finds the files and dispatches on the family ``detect`` names.
"""

FLOW_FAMILIES = ("sd3", "flux", "zimage")

# family -> "module:function" building the model from a ModelFiles
FLOW_LOADERS = {
    "sd3": "studio.engine.models.flow.sd3:load_sd3",
    "flux": "studio.engine.models.flow.flux:load_flux",
    "zimage": "studio.engine.models.flow.zimage:load_zimage",
}

FLOW_LABELS = {"sd3": "SD 3.x", "flux": "Flux.1", "zimage": "Z-Image"}
