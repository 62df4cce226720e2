"""Fuzz targets for what the engine reads: model files, the model-folder scan, image files, request fields.

Registered in tests/fuzz_targets.py's TARGETS; its helpers are looked up when a strategy is built.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy


# The shared helpers, imported late: tests/fuzz_targets.py imports this module at its end.
def _helpers() -> Any:
    import tests.fuzz_targets as helpers

    return helpers

# -- safetensors headers --------------------------------------------------------------------------------------

# Names that steer detection into each of its branches (SD 1.x/2.x/XL, refiner, LoRA, SD3, inpainting...).
TENSOR_NAMES = ("model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.bias",
                "cond_stage_model.transformer.text_model.final_layer_norm.bias", "cond_stage_model.model.ln_final.bias",
                "conditioner.embedders.0.transformer.text_model.x", "conditioner.embedders.1.model.x",
                "conditioner.embedders.0.model.x", "first_stage_model.decoder.conv_in.bias", "lora_unet_down.x",
                "joint_blocks.0.x", "double_blocks.0.x", "__metadata__", "v_pred")
ENTRY = {"dtype": "F32", "shape": [4, 4, 3, 3], "data_offsets": [0, 576]}


def _header_documents() -> SearchStrategy:
    h = _helpers()
    entry = st.one_of(h.mutated(ENTRY), h.mutated({**ENTRY, "shape": [320, 9, 3, 3]}), h.json_values(4))
    names = st.one_of(st.sampled_from(TENSOR_NAMES), h.texts())
    return st.one_of(st.dictionaries(names, entry, max_size=6), h.json_values())


def safetensors_files() -> SearchStrategy:
    """Whole files: a length prefix (mostly right), a header from JSON (or noise), some data bytes."""
    h = _helpers()
    lengths = st.one_of(st.none(), st.none(), st.none(), st.sampled_from(h.EDGE_INTS).filter(lambda n: 0 <= n < 2**64),
                        st.integers(0, 2**64 - 1))

    def build(parts: tuple[bytes, int | None, int]) -> bytes:
        header, length, data = parts
        return struct.pack("<Q", len(header) if length is None else length) + header + b"\0" * data

    return st.one_of(st.tuples(h.json_bytes(_header_documents()), lengths, st.integers(0, 1024)).map(build),
                     st.binary(max_size=64))


def _accounted(path: Path, keys: list[str], skipped: list[str]) -> bool:
    """Whether the scan listed ``path`` (True) or reported it (False); AssertionError when neither or both.

    A path may be listed through another way to it (a symlink loop): listed paths are compared resolved."""
    target = path.resolve()
    listed = any(k.startswith("sd:") and Path(k[3:]).resolve() == target for k in keys)
    reported = any(r.startswith((f"{path.name} ", f"{path.name}/", f"{path.name}:")) for r in skipped)
    assert listed != reported, f"{path.name}: listed={listed}, reported={reported}"
    return listed


def _run_safetensors(data: bytes, folder: Path) -> None:
    """The file through the registry's scan (listed or reported), then read as loading reads it."""
    from studio.engine.models.registry import scan_models
    from studio.engine.models.sd.detect import detect_keys
    from studio.engine.models.sd.safety import read_checkpoint

    path = folder / "model.safetensors"
    path.write_bytes(data)
    entries, skipped = scan_models([folder])
    listed = _accounted(path, [e.key for e in entries], skipped)
    state = read_checkpoint(path)  # ModelLoadError for anything the header or safetensors refuses
    if not listed:
        detect_keys({k: tuple(v.shape) for k, v in state.items()}, path.name)
        raise AssertionError("the scan reported a file that reads and detects as a model")


# -- model folders ------------------------------------------------------------------------------------------

def _diffusers_configs() -> SearchStrategy:
    h = _helpers()
    unet = h.json_bytes(st.one_of(h.mutated({"in_channels": 4, "addition_embed_type": None}), h.json_values()))
    text = h.json_bytes(st.one_of(h.mutated({"hidden_act": "quick_gelu"}), h.json_values()))
    scheduler = h.json_bytes(st.one_of(h.mutated({"prediction_type": "epsilon", "num_train_timesteps": 1000}),
                                     h.json_values()))
    return st.fixed_dictionaries({"unet/config.json": unet, "text_encoder/config.json": st.one_of(st.none(), text),
                                  "text_encoder_2": st.booleans(),
                                  "scheduler/scheduler_config.json": st.one_of(st.none(), scheduler)})


def _model_items() -> SearchStrategy:
    single = st.tuples(st.sampled_from(("single",)), st.sampled_from(("a.safetensors", "B.SAFETENSORS", "c.ckpt",
                                                                      "d.pt")),
                       st.one_of(safetensors_files(), st.binary(max_size=128)))
    pipeline = st.tuples(st.just("pipeline"), st.sampled_from(("pipe", "sub/pipe2")), _diffusers_configs())
    odd = st.tuples(st.just("odd"), st.sampled_from(("loop", "dangling.safetensors", "dir.safetensors")), st.none())
    return st.lists(st.one_of(single, single, pipeline, odd), max_size=4)


def _write_items(items: list[tuple[str, str, Any]], root: Path) -> tuple[list[Path], list[Path]]:
    """Make the folder; (checkpoint files the scan must account for, pipelines it must account for)."""
    files, pipelines = [], []
    for kind, name, content in items:
        path = root / name
        if path.exists() or path.is_symlink():
            continue
        if kind == "single":
            path.write_bytes(content)
            files.append(path)
        elif kind == "pipeline":
            for sub in ("unet", "vae", "text_encoder"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            (path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
            for rel, data in content.items():
                if rel == "text_encoder_2":
                    if data:
                        (path / rel).mkdir(exist_ok=True)
                elif data is not None:
                    (path / rel).parent.mkdir(parents=True, exist_ok=True)
                    (path / rel).write_bytes(data)
                elif rel == "text_encoder/config.json":
                    (path / "text_encoder").rmdir()
            pipelines.append(path)
        elif name == "loop":
            path.symlink_to(root, target_is_directory=True)  # a folder that contains itself
        elif name == "dangling.safetensors":
            path.symlink_to(root / "nowhere.safetensors")
        else:
            path.mkdir()
    return files, pipelines


def _run_model_folder(items: list[tuple[str, str, Any]], folder: Path) -> None:
    """The engine's catalog over a folder of odd files: it finishes, lists the built-ins, accounts for every
    checkpoint file and pipeline; each listed pickle is refused or read without running code."""
    from studio.engine.models.errors import ModelLoadError
    from studio.engine.models.sd.safety import read_checkpoint
    from studio.worker.engine_session import EngineSession

    root = folder / "models"
    root.mkdir()
    files, pipelines = _write_items(items, root)
    catalog = EngineSession("cpu", model_folders=(str(root),)).catalog()
    assert catalog.models and catalog.models[0].key in ("embedded", "toy")
    keys = [m.key for m in catalog.models]
    for path in files + pipelines:
        if path.suffix.lower() != ".pt":  # the scan lists .safetensors and .ckpt files, as AUTOMATIC1111 does
            _accounted(path, keys, list(catalog.skipped_models))
    for path in files:
        if path.suffix.lower() in (".ckpt", ".pt"):
            try:
                read_checkpoint(path)
            except ModelLoadError:
                pass


# -- image files ----------------------------------------------------------------------------------------------

def _image_files() -> SearchStrategy:
    h = _helpers()
    from studio.io.image_formats import IMAGE_SUFFIXES

    content = st.one_of(h.image_bytes(formats=("PNG", "WEBP", "TIFF", "GIF", "JPEG", "BMP")),
                        st.binary(max_size=64).map(_webp_with_exif))
    return st.tuples(content, st.sampled_from(IMAGE_SUFFIXES))


def _webp_with_exif(exif: bytes) -> bytes:
    """A small WebP whose EXIF block is ``exif`` (noise, mostly)."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(buffer, format="WEBP", exif=exif)
    return buffer.getvalue()


_window: dict[str, Any] = {}


def _file_actions() -> Any:
    """One real window per process (no engine: opening a file needs none), its FileActions."""
    h = _helpers()
    if "files" not in _window:
        from studio.app import create_studio
        from studio.state.paths import StudioPaths

        h.qt_app()
        studio = create_studio(StudioPaths.under(Path(tempfile.mkdtemp(prefix="fuzz-window-"))))
        _window.update(studio=studio, files=studio.controller.files)
    return _window["files"]


def _run_image_file(case: tuple[bytes, str], folder: Path) -> None:
    """Through load_image (the CLI's --init/--mask) and through the window's File > Open path."""
    import numpy as np

    from studio.io.png import ImageFileError, load_image

    data, suffix = case
    path = folder / f"image{suffix}"
    path.write_bytes(data)
    try:
        image = load_image(path)
    except ImageFileError as exc:
        assert str(exc).startswith("image"), f"the message does not name the file: {exc}"
        image = None
    if image is not None:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, image.shape
    files = _file_actions()
    banner = files.window.banner
    banner.hide()
    before = files.window.canvas.image()
    files.open_file(str(path))
    assert banner.text(), "File > Open said nothing"
    if image is None:
        assert banner.text().startswith("Could not open the image"), banner.text()
        assert files.window.canvas.image() is before or np.array_equal(files.window.canvas.image(), before)
    else:
        assert np.array_equal(files.window.canvas.image(), image)


# -- request fields -------------------------------------------------------------------------------------------

SAMPLER_NAMES = ("euler", "euler_a", "ddim", "ddpm", "heun", "dpmpp_2m", "Euler a", "DPM++ 2M", "lms", "")
SPACING_NAMES = ("leading", "trailing", "linspace", "karras", "Karras", "")


def _requests() -> SearchStrategy:
    h = _helpers()
    import numpy as np

    small = st.one_of(st.sampled_from((8, 16, 24, 32)), st.sampled_from((8, 16, 24, 32)), st.integers(-64, 64),
                      st.sampled_from(h.EDGE_INTS))
    steps = st.one_of(st.integers(1, 4), st.integers(1, 4), st.sampled_from(h.EDGE_INTS))
    maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731
    fields = {
        "prompt": h.texts(), "negative_prompt": h.texts(),
        "sampler": st.one_of(st.sampled_from(SAMPLER_NAMES), h.texts()),
        "spacing": st.one_of(st.sampled_from(SPACING_NAMES), h.texts()), "steps": steps,
        "cfg_scale": h.numbers(), "guidance_rescale": h.numbers(),
        "classifier_scale": st.one_of(st.just(0.0), h.numbers()),
        "guidance_interval": maybe(st.tuples(h.numbers(), h.numbers())), "dynamic_threshold": maybe(h.numbers()),
        "eta": h.numbers(), "seed": st.one_of(st.integers(0, 2**63 - 1), st.sampled_from(h.EDGE_INTS)),
        "variation_seed": st.one_of(st.just(0), st.sampled_from(h.EDGE_INTS)),
        "variation_strength": st.one_of(st.just(0.0), h.numbers()), "strength": h.numbers(),
        "mask_feather": st.one_of(st.floats(0, 16), h.numbers()), "resample": st.one_of(st.integers(0, 3), small),
        "clip_skip": st.one_of(st.just(1), st.sampled_from(h.EDGE_INTS)), "width": small, "height": small,
    }

    @st.composite
    def build(draw: Callable[[SearchStrategy], Any]) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True))
        kw = {name: draw(fields[name]) for name in chosen}
        w, h = kw.get("width", 32), kw.get("height", 32)
        shape = (h, w) if draw(st.integers(0, 3)) and all(isinstance(v, int) and 0 < v <= 64 for v in (w, h)) \
            else (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
        if draw(st.booleans()):
            kw["init_image"] = np.full((*shape, draw(st.sampled_from((3, 4, 1)))), 90, np.uint8)
            if draw(st.booleans()):
                mask = np.zeros(shape, np.float32)
                mask[:, shape[1] // 2:] = draw(st.sampled_from((1.0, 0.5, float("nan"), 1e30, -1.0)))
                kw["mask"] = mask
        return kw

    return build()


_toy: dict[str, Any] = {}


def _run_request(kw: dict[str, Any], _folder: Path) -> None:
    """GenerationRequest with these fields through validate_request and a Runner on the toy model."""
    import numpy as np

    from studio.engine.models.toy import ToyShapesModel
    from studio.engine.request import GenerationRequest
    from studio.engine.runner import Runner

    model = _toy.setdefault("model", ToyShapesModel())
    request = GenerationRequest(**{"prompt": "red circle", "steps": 2, **kw})
    result = Runner(model).run(request)
    assert result.image.dtype == np.uint8 and result.image.shape == (request.height, request.width, 3)


# -- LoRA files ----------------------------------------------------------------------------------------------

LORA_MODULES = ("lora_unet_down_blocks_0_attentions_0_proj_in", "unet.mid_block.attentions.0.proj_out",
                "lora_te1_text_model_encoder_layers_0_mlp_fc1", "text_encoder.x.processor.to_out")
LORA_ENDINGS = (".lora_down.weight", ".lora_up.weight", ".lora_mid.weight", ".alpha", ".scale", ".lora_A.weight",
                ".lora_B.weight", ".lora_B.bias", "_lora.up.weight", ".hada_w1_a", ".hada_w1_b", ".hada_w2_a",
                ".hada_w2_b", ".hada_t1", ".hada_t2", ".lokr_w1", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2",
                ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2", ".diff", ".diff_b", ".w_norm", ".b_norm", ".dora_scale",
                ".weight")


def _lora_files() -> SearchStrategy:
    """Real safetensors files of LoRA-like keys with any small shapes and dtypes (and raw bytes)."""
    import torch

    dtypes = st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool])
    shapes = st.lists(st.integers(0, 5), max_size=4)
    keys = st.builds(lambda m, e: m + e, st.sampled_from(LORA_MODULES), st.sampled_from(LORA_ENDINGS))
    entries = st.dictionaries(keys, st.tuples(shapes, dtypes, st.sampled_from([1.0, 0.0, float("nan")])),
                              max_size=8)

    def build(items: dict) -> bytes:
        from safetensors.torch import save

        return save({k: torch.full(tuple(shape), fill).to(dtype) for k, (shape, dtype, fill) in items.items()})

    return st.one_of(entries.map(build), safetensors_files())


def _run_lora_file(data: bytes, folder: Path) -> None:
    """Read and parse a LoRA file and compute each layer's change for a linear and a convolution weight."""
    import torch

    from studio.engine.models.sd.lora_files import parse_lora, read_lora_tensors
    from studio.engine.models.sd.lora_math import layer_delta

    path = folder / "style.safetensors"
    path.write_bytes(data)
    layers, _ = parse_lora(read_lora_tensors(path), path.name)
    for layer in layers:
        for shape in (torch.Size([4, 4]), torch.Size([4, 4, 3, 3])):
            layer_delta(layer, shape)


# -- upscaler files ------------------------------------------------------------------------------------------

UPSCALER_KEYS = ("conv_first.weight", "conv_first.bias", "body.0.rdb1.conv1.weight", "body.0.rdb1.conv5.weight",
                 "body.1.rdb3.conv2.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.weight",
                 "conv_hr.weight", "conv_last.weight", "conv_last.bias", "model.0.weight",
                 "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.1.weight", "model.3.weight", "model.6.weight",
                 "params_ema", "module.conv_first.weight",
                 "layers.0.residual_group.blocks.0.attn.relative_position_bias_table")


def _upscaler_files() -> SearchStrategy:
    """(suffix, bytes): safetensors of ESRGAN/SwinIR-like keys with small shapes, other safetensors, raw bytes."""
    import torch

    shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4)
    entries = st.dictionaries(st.sampled_from(UPSCALER_KEYS), shapes, max_size=10)

    def build(items: dict) -> bytes:
        from safetensors.torch import save

        return save({k: torch.rand(tuple(shape)) for k, shape in items.items()})

    files = st.one_of(entries.map(build), safetensors_files())
    return st.one_of(st.tuples(st.just(".safetensors"), files), st.tuples(st.just(".pth"), st.binary(max_size=256)))


def _run_upscaler_file(item: tuple[str, bytes], folder: Path) -> None:
    """Load an upscaler file and, when it loads, upscale a tiny image with it."""
    import numpy as np

    from studio.engine.upscalers import upscale_image

    suffix, data = item
    path = folder / f"4x-fuzz{suffix}"
    path.write_bytes(data)
    out = upscale_image(np.zeros((6, 5, 3), np.uint8), 2, str(path), device="cpu")
    assert out.shape == (12, 10, 3)


def engine_targets() -> list[Any]:
    h = _helpers()
    from studio.engine.models.errors import ModelLoadError
    from studio.engine.models.sd.lora_math import LoraShapeError
    from studio.engine.request import RequestError
    from studio.engine.runner import NonFiniteError

    return [
        h.FuzzTarget("safetensors header", safetensors_files(), _run_safetensors, (ModelLoadError,)),
        h.FuzzTarget("model folder scan", _model_items(), _run_model_folder, (), suite_examples=20),
        # The first input builds the shared window (a second or more on a busy machine).
        h.FuzzTarget("image file", _image_files(), _run_image_file, (), time_limit_s=6.0),
        h.FuzzTarget("request fields", _requests(), _run_request, (RequestError, NonFiniteError)),
        h.FuzzTarget("LoRA file", _lora_files(), _run_lora_file, (ModelLoadError, LoraShapeError)),
        h.FuzzTarget("upscaler file", _upscaler_files(), _run_upscaler_file, (ModelLoadError,)),
    ]
