"""The one registry of bad-input targets (issue 10): every entry point that reads what a user or
another program wrote, with a hypothesis strategy of bad (and good) inputs for it.

``tests/test_fuzz_targets.py`` runs every target with a small fixed budget; ``scripts/fuzz_inputs.py``
runs them with a large one and prints ``crashes: N of M inputs``.

Adding a target (after rebasing on main):

    TARGETS.append(FuzzTarget(
        name="parameters text",                  # short, unique: it names the test and the script's line
        inputs=st.text(),                        # a strategy; the helpers below build JSON, bytes and PNGs
        run=lambda text, folder: parse(text),    # feed ONE input to the real entry point; ``folder`` is a
                                                 # fresh empty temporary folder for files it needs
        expected=(RequestError,),                # the studio's own user-facing errors; anything else,
    ))                                           # or a run longer than TIME_LIMIT_S, is a crash

Optional: ``suite_examples`` (fewer inputs in the suite for a slow target) and ``time_limit_s``.
A run may also raise AssertionError for a result that is wrong without an exception (a panel left
half-restored, values outside their widgets' ranges): it counts as a crash. Qt targets call
``qt_app()`` first; the widgets they share are made once per process (``shared_panel()``).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from studio.io.parameters import ParametersError

# One input using more CPU than this is a hang. CPU time (this process's, all threads), not wall time:
# a CI machine or a 2-core box with other work on it stretches the wall clock 3-5x, not the CPU an input
# costs, and a real quadratic path costs CPU. A run blocked without using CPU meets the SIGALRM below.
TIME_LIMIT_S = 2.0
SUITE_EXAMPLES = 40  # inputs per target in tests/test_fuzz_targets.py (fixed and derandomized)
# A run still going at this multiple of its limit is interrupted (SIGALRM). Not at the limit itself: the
# signal may land inside a Qt callback, where PySide swallows the exception and leaves odd state behind;
# a slow run that finishes is caught by the elapsed-time check instead.
INTERRUPT_AFTER = 5


@dataclass(frozen=True)
class FuzzTarget:
    name: str  # e.g. "settings.json", "parameters text", "safetensors header"
    inputs: SearchStrategy  # hypothesis strategy generating bad (and good) inputs
    run: Callable[[Any, Path], None]  # feeds one input to the real entry point (tmp folder given)
    expected: tuple[type[BaseException], ...]  # the studio's own user-facing errors; anything else is a crash
    # Optional: a target whose every input builds the whole window takes fewer inputs in the suite
    # (None: the suite's default) and more time per input.
    suite_examples: int | None = None
    time_limit_s: float | None = None  # None: TIME_LIMIT_S


# -- running one input ---------------------------------------------------------------------------------

class FuzzHang(Exception):
    """An input that took longer than TIME_LIMIT_S."""


@dataclass(frozen=True)
class Crash:
    target: str
    error: BaseException
    value: Any

    @property
    def kind(self) -> tuple[str, str, str]:
        """What makes two crashes the same: target, exception type, and the message's first line."""
        message = str(self.error).splitlines()[0] if str(self.error) else ""
        return self.target, type(self.error).__name__, message[:120]

    def describe(self, width: int = 160) -> str:
        shown = repr(self.value)
        shown = shown if len(shown) <= width else shown[: width - 3] + "..."
        target, kind, message = self.kind
        return f"{target}: {kind}: {message}\n    input: {shown}"


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    # SIGALRM interrupts a Python-level loop; a run stuck in C code is caught by the elapsed check after it.
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise FuzzHang(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_one(target: FuzzTarget, value: Any, root: Path) -> Crash | None:
    """Feed ``value`` to ``target`` in a fresh folder under ``root``; the crash, or None when it held."""
    folder = Path(tempfile.mkdtemp(dir=root))
    limit = target.time_limit_s or TIME_LIMIT_S
    start = time.process_time()
    try:
        with _time_limit(limit * INTERRUPT_AFTER):
            target.run(value, folder)
    except target.expected:
        pass
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - everything else is what we are looking for
        return Crash(target.name, exc, value)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.process_time() - start
    if elapsed > limit:
        return Crash(target.name, FuzzHang(f"took {elapsed:.1f} s of CPU (limit {limit} s)"), value)
    return None


# -- Qt for the targets that restore widgets ---------------------------------------------------------------

def qt_app() -> Any:
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


_shared: dict[str, Any] = {}


def shared_canvas() -> Any:
    """One real CanvasView per process, for the targets that restore a document."""
    if "canvas" not in _shared:
        qt_app()
        from studio.ui.canvas.canvas_view import CanvasView

        _shared["canvas"] = CanvasView()
    return _shared["canvas"]


def shared_writer() -> Any:
    """One BackgroundWriter (a thread) per process for the history models the targets make."""
    if "writer" not in _shared:
        from studio.state.background_writer import BackgroundWriter

        _shared["writer"] = BackgroundWriter()
    return _shared["writer"]


def shared_panel() -> Any:
    """One real PromptPanel per process (making one per input would dominate the run time)."""
    if "panel" not in _shared:
        qt_app()
        from studio.ui.prompt_panel import PromptPanel

        _shared["panel"] = PromptPanel()
    return _shared["panel"]


# -- strategies any target can use ----------------------------------------------------------------------

EDGE_INTS = (0, 1, -1, -8, 7, 8, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64, -(2**63), 100_000,
             99_999_999_999, 10**400)
EDGE_TEXTS = ("", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "é", "😀" * 3, "\u202e", "\n" * 5, "NaN", "1e999",
              "-1", "0x10", "Infinity")


def numbers() -> SearchStrategy:
    """Ints of any size, floats with NaN and infinities, and the edges that have broken things before."""
    return st.one_of(st.integers(), st.sampled_from(EDGE_INTS), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from((1e308, -1e308, 5e-324, float("nan"), float("inf"), -0.0)))


def texts() -> SearchStrategy:
    return st.one_of(st.text(max_size=40), st.sampled_from(EDGE_TEXTS))


def json_leaves() -> SearchStrategy:
    return st.one_of(st.none(), st.booleans(), numbers(), texts())


def json_values(max_leaves: int = 8) -> SearchStrategy:
    """Any JSON-like value (and what json.dumps writes beyond JSON: NaN, Infinity, huge ints)."""
    return st.recursive(json_leaves(), lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts(), children, max_size=4)), max_leaves=max_leaves)


def mutated(valid: dict[str, Any], values: SearchStrategy | None = None) -> SearchStrategy:
    """``valid`` with some of its keys replaced by odd values, some dropped and some unknown ones added."""
    # Mostly single odd values: hypothesis draws nested ones slowly, and one bad field is the common case.
    values = values or st.one_of(json_leaves(), json_leaves(), json_leaves(), json_values(4))
    keys = sorted(valid)

    @st.composite
    def build(draw: Callable[[SearchStrategy], Any]) -> dict[str, Any]:
        data = dict(valid)
        for key in draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True)) if keys else ():
            data[key] = draw(values)
        for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True)) if keys else ():
            data.pop(key, None)
        data.update(draw(st.dictionaries(texts(), values, max_size=2)))
        return data

    return build()


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    except ValueError:  # an int too long for str(): keep the rest of the document
        return json.dumps(str(value))


ODD_JSON = (b"", b"null", b"[]", b"1e999", b"-Infinity", b"NaN", b'{"steps": 1' + b"0" * 5000 + b"}", b"\x00" * 64,
            b'{"a": "\\ud800"}', b"{" + b" " * 100_000 + b"}")


def json_bytes(documents: SearchStrategy) -> SearchStrategy:
    """File contents: the documents written out, then truncated, re-encoded, nested deep, or replaced by noise."""

    def encoded(doc: Any) -> bytes:
        try:
            return _dumps(doc).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: what a careless writer would leave
            return _dumps(doc).encode("utf-8", "surrogatepass")

    whole = documents.map(encoded)
    return st.one_of(
        whole, whole,
        st.tuples(whole, st.floats(0, 1)).map(lambda p: p[0][: int(len(p[0]) * p[1])]),  # cut by a crash
        whole.map(lambda b: b"\xef\xbb\xbf" + b),  # a BOM, as some editors save
        documents.map(lambda d: _dumps(d).encode("utf-16", "surrogatepass")),
        st.integers(1, 200_000).map(lambda n: b"[" * n),
        st.integers(1, 5_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 5_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.integers(0, len(ODD_JSON) - 1).map(ODD_JSON.__getitem__),  # (an index: a short repr in reports)
        st.binary(max_size=200),
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but holds one row: a decompression bomb in 60 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", row) + _png_chunk(b"IEND", b"")


def image_bytes(max_side: int = 48, modes: tuple[str, ...] = ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "F"),
                formats: tuple[str, ...] = ("PNG",)) -> SearchStrategy:
    """Image files: valid ones in many modes, truncated ones, noise, and huge claimed sizes."""
    import io

    import numpy as np
    from PIL import Image

    @st.composite
    def valid(draw: Callable[[SearchStrategy], Any]) -> bytes:
        w, h = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
        mode, fmt = draw(st.sampled_from(modes)), draw(st.sampled_from(formats))
        seed = draw(st.integers(0, 2**32 - 1))
        pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
        img = Image.fromarray(pixels, "RGBA").convert(mode if mode not in ("I;16", "F") else "L")
        if mode in ("I;16", "F"):
            img = img.convert("I").convert(mode) if mode == "F" else img.convert("I;16")
        buffer = io.BytesIO()
        try:
            img.save(buffer, format=fmt)
        except (OSError, ValueError, KeyError):  # a mode this format cannot hold: plain RGB instead
            buffer = io.BytesIO()
            img.convert("RGB").save(buffer, format=fmt)
        return buffer.getvalue()

    good = valid()
    return st.one_of(
        good, good,
        st.tuples(good, st.floats(0, 1)).map(lambda p: p[0][: int(len(p[0]) * p[1])]),
        st.tuples(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)).map(lambda s: png_header_only(*s)),
        st.sampled_from((100_000, 65_535, 30_000)).map(lambda side: png_header_only(side, side)),
        st.binary(max_size=200),
        st.just(b"\x89PNG\r\n\x1a\n"),
    )


# -- checks shared by the panel targets ------------------------------------------------------------------

def check_in_limits(values: Any) -> None:
    """Every PanelValues field holds what its widget can show (AssertionError names the one that does not)."""
    from studio.state.panel_limits import MAX_PROMPT_CHARS, PANEL_LIMITS, Range

    for name, limit in PANEL_LIMITS.items():
        value = getattr(values, name)
        if name == "guidance_interval":
            if value is not None:
                assert len(value) == 2 and all(limit.holds(v) for v in value) and value[0] <= value[1], value
            continue
        if name in ("dynamic_threshold", "hires_scale") and value is None:
            continue  # off
        assert limit.holds(value), f"{name} = {value!r} is outside {limit}"
        assert not isinstance(limit, Range) or not limit.is_int or type(value) is int, f"{name} = {value!r}"
    from studio.state.control_units import CONTROL_RANGES, CONTROL_UNITS, PREPROCESSOR_CHOICES

    assert len(values.controlnets) == CONTROL_UNITS
    for unit in values.controlnets:
        assert isinstance(unit.enabled, bool) and PREPROCESSOR_CHOICES.holds(unit.preprocessor), unit
        assert all(limit.holds(getattr(unit, name)) for name, limit in CONTROL_RANGES.items()), unit
        assert unit.start < unit.end, unit
        unit.model.encode("utf-8")
    for name in ("prompt", "negative_prompt", "model", "sampler"):
        getattr(values, name).encode("utf-8")  # writable back to JSON as UTF-8
    for name in ("prompt", "negative_prompt"):
        assert len(getattr(values, name)) <= MAX_PROMPT_CHARS, f"{name} is {len(getattr(values, name))} characters"


def restore_panel(values: Any) -> None:
    """Put ``values`` into the real PromptPanel, as every restore does; it must show all of them."""
    panel = shared_panel()
    panel.set_values(values)
    shown = panel.values()
    for name in ("steps", "seed", "width", "height", "batch_count", "seed_mode", "prompt", "negative_prompt"):
        assert getattr(shown, name) == getattr(values, name), f"{name}: panel shows {getattr(shown, name)!r}, " \
                                                              f"restored {getattr(values, name)!r}"
    for name in ("cfg_scale", "guidance_rescale", "strength", "mask_feather"):
        # The boxes round to their decimals (feather to whole pixels); a value they clamped would be far off.
        assert math.isclose(getattr(shown, name), getattr(values, name), abs_tol=0.5), name


# -- the targets ------------------------------------------------------------------------------------------

def _panel_documents() -> SearchStrategy:
    from studio.state.panel_values import PanelValues

    return st.one_of(mutated(PanelValues().to_json()), json_values())


def _run_panel_from_json(data: Any, _folder: Path) -> None:
    from studio.state.panel_values import PanelValues

    values = PanelValues.from_json(data)
    check_in_limits(values)
    restore_panel(values)


def _request_fields() -> SearchStrategy:
    """What a parameters parse hands the panel: the request's field names with any values."""
    from studio.state.panel_values import PanelValues

    names = [f.name for f in fields(PanelValues)] + ["eta", "resample", "dynamic_threshold"]
    interval = st.one_of(st.none(), st.tuples(numbers(), numbers()), st.lists(numbers(), max_size=3))
    value = st.one_of(numbers(), texts(), st.booleans(), st.none(), interval)
    return st.dictionaries(st.sampled_from(names), value, max_size=len(names))


def _run_panel_from_request(fields_: dict[str, Any], _folder: Path) -> None:
    from studio.state.panel_values import PanelValues

    values, notices = PanelValues.from_request_fields_with_notices(fields_, PanelValues(seed=7))
    check_in_limits(values)
    assert all(isinstance(n, str) and n for n in notices)
    assert PanelValues.from_request_fields(fields_, PanelValues(seed=7)) == values
    restore_panel(values)


def _settings_documents() -> SearchStrategy:
    from studio.state.settings import Settings

    valid = Settings(model_folders=("/models",), panel=Settings().panel).to_json()
    return st.one_of(mutated(valid), mutated(valid).flatmap(
        lambda d: mutated(d["panel"] if isinstance(d.get("panel"), dict) else {}).map(lambda p: {**d, "panel": p})),
        json_values())


def _write_settings(content: bytes, root: Path) -> Path:
    from studio.state.paths import StudioPaths

    path = StudioPaths.under(root).settings_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _run_settings(content: bytes, folder: Path) -> None:
    """settings.json as the studio starts with it: loaded (or set aside), saved back, restored into the panel."""
    from studio.state.settings import load_settings, save_settings

    path = _write_settings(content, folder)
    loaded = load_settings(path)
    assert not loaded.set_aside or not path.exists(), "a file that could not be read was left in place"
    check_in_limits(loaded.settings.panel)
    assert 0 <= loaded.settings.threads <= 256
    save_settings(path, loaded.settings)  # what closing the window writes: the next start reads the same
    again = load_settings(path)
    assert again.message is None and again.settings == loaded.settings, again.message
    restore_panel(loaded.settings.panel)


def _noise_png(width: int, height: int, mode: str, seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    channels = 3 if mode == "RGB" else 1
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(2) if channels == 1 else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip_of(parts: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _autosave_folders() -> SearchStrategy:
    """An autosave folder: autosave.zip (real zips of odd parts, cut or noise) and/or the old three files."""
    images, panels = image_bytes(), json_bytes(_panel_documents())
    part = st.one_of(st.none(), images, panels)
    parts = st.fixed_dictionaries({}, optional={"image.png": st.one_of(images, part), "mask.png":
                                                st.one_of(images, part), "panel.json": st.one_of(panels, part),
                                                "other": part})
    coherent = st.builds(lambda w, h, seed, panel: {
        "image.png": _noise_png(w, h, "RGB", seed), "mask.png": _noise_png(w, h, "L", seed), "panel.json": panel},
        st.integers(1, 64), st.integers(1, 64), st.integers(0, 2**32 - 1),
        st.one_of(_panel_documents().map(lambda d: _dumps(d).encode("utf-8", "surrogatepass")), panels))
    zipped = st.one_of(parts, coherent, coherent).map(lambda p: _zip_of({k: v for k, v in p.items() if v is not None}))
    archive = st.one_of(zipped, zipped, st.tuples(zipped, st.floats(0, 1)).map(
        lambda z: z[0][: int(len(z[0]) * z[1])]), st.binary(max_size=300))
    old = {"image.png": st.one_of(images, part), "mask.png": st.one_of(images, part),
           "panel.json": st.one_of(panels, part)}
    return st.fixed_dictionaries({}, optional={"autosave.zip": archive, **old})


def _restore_document(snapshot: Any) -> None:
    """What the window does with an autosave snapshot: the image, then the mask, onto the real canvas."""
    canvas = shared_canvas()
    if snapshot.image is not None:
        assert snapshot.image.dtype.name == "uint8" and snapshot.image.ndim == 3 and snapshot.image.shape[2] == 3
        canvas.set_image(snapshot.image, undoable=False)
        if snapshot.mask is not None:
            assert snapshot.mask.shape == snapshot.image.shape[:2]
            canvas.set_mask(snapshot.mask, undoable=False)


def _write_autosave(contents: dict[str, bytes | None], root: Path) -> Path:
    from studio.state.paths import StudioPaths

    autosave_dir = StudioPaths.under(root).autosave_dir
    autosave_dir.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        if data is not None:
            (autosave_dir / name).write_bytes(data)
    return autosave_dir


def _run_autosave(contents: dict[str, bytes | None], folder: Path) -> None:
    """The autosave folder as the studio starts with it: recovered (or set aside), restored, saved again."""
    from studio.state.autosave import Autosave

    autosave = Autosave(_write_autosave(contents, folder))
    snapshot, message = autosave.recover()
    if message is not None:
        assert not autosave.file.exists() and not any(p.exists() for p in autosave.old_files), \
            "a damaged autosave was left in place"
    if snapshot.panel is not None:
        check_in_limits(snapshot.panel)
        restore_panel(snapshot.panel)
    _restore_document(snapshot)
    autosave.save(snapshot)  # the next autosave, over whatever was there
    again = autosave.load()
    assert (again.panel == snapshot.panel and (again.image is None) == (snapshot.image is None)
            and (again.mask is None) == (snapshot.mask is None))


def _history_folders() -> SearchStrategy:
    """History folders: entries (sidecar, image, thumbnail, each odd or missing), old or just written."""
    from studio.state.panel_values import PanelValues

    sidecar = {"values": PanelValues(prompt="kitten").to_json(), "parameters": "kitten\nSteps: 20",
               "model_label": "Toy", "created": 1.7e9, "width": 8, "height": 8}
    sidecars = json_bytes(st.one_of(mutated(sidecar), mutated(sidecar).flatmap(
        lambda d: mutated(PanelValues().to_json()).map(lambda v: {**d, "values": v}))))
    name = st.one_of(st.integers(0, 3).map(lambda n: f"20240101-000000-00{n}"),
                     st.sampled_from(("x", "20240101-000000-001-2", ".hidden", "set-aside")))
    def present(files: SearchStrategy) -> SearchStrategy:
        return st.one_of(st.none(), files, files, files)  # mostly there: an entry needs its sidecar and image

    entry = st.fixed_dictionaries({"id": name, "old": st.booleans(), ".json": present(sidecars),
                                   ".png": present(image_bytes()), ".thumb.png": st.one_of(st.none(), image_bytes())})
    return st.lists(entry, max_size=3)


def _write_history(entries: list[dict[str, Any]], root: Path) -> Path:
    import os

    from studio.state.paths import StudioPaths

    history_dir = StudioPaths.under(root).history_dir
    history_dir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        for suffix in (".json", ".png", ".thumb.png"):
            if entry[suffix] is not None:
                path = history_dir / f"{entry['id']}{suffix}"
                path.write_bytes(entry[suffix])
                if entry["old"]:
                    os.utime(path, (0, 0))
    return history_dir


def _run_history(entries: list[dict[str, Any]], folder: Path) -> None:
    """The history folder as the studio starts with it: tidied, listed, each entry shown, used and opened."""
    from studio.io.png import load_image
    from studio.state.history import HistoryModel, HistoryStore

    store = HistoryStore(_write_history(entries, folder))
    store.tidy()
    model = HistoryModel(store, shared_writer())
    for row in range(model.rowCount()):
        index = model.index(row)
        for role in (0, 1, 3):  # display, decoration (the thumbnail), tooltip
            model.data(index, role)
        listed = model.entry(row)
        assert listed.meta_file.exists() and listed.image_file.exists()
        check_in_limits(listed.values)
        restore_panel(listed.values.with_changes(seed_mode="fixed"))  # "Use these settings"
        try:  # opening it, as the window does: a damaged image is a message
            shared_canvas().set_image(load_image(listed.image_file))
        except ValueError:
            pass
# -- parameters text and --params-from -------------------------------------------------------------------

# Keys and values as AUTOMATIC1111, Forge and ComfyUI image savers write them, and values that broke readers.
INFOTEXT_KEYS = ("Steps", "Sampler", "Schedule type", "Scheduler", "CFG scale", "CFG Scale", "Seed", "Size",
                 "Model hash", "Model", "Denoising strength", "Clip skip", "Mask blur", "CFG Rescale phi",
                 "Guidance interval", "Classifier scale", "Dynamic threshold", "Eta DDIM", "RePaint resample",
                 "Studio model", "Distilled CFG Scale", "Hashes", "Lora hashes", "Version", "Civitai resources")
INFOTEXT_VALUES = ("20", "DPM++ 2M", "DPM++ 2M Karras", "Euler a", "Karras", "Automatic", "SGM Uniform",
                   "Exponential", "dpmpp_2m_karras", "euler_ancestral", "ddim_ddim_uniform", "dpmpp_2m karras",
                   "UniPC", "DPM++ SDE Karras", "uni_pc_bh2", "7", "8.0", "3054741874", "18446744073709551615",
                   "-1", "512x768", "512", "100000x100000", "0x0", "64 x 64", "6ce0161689", "0.55", "2", "-2",
                   "0.28-5.42", "5-1", "1e-05-inf", "1e400", "99999999999", "nan", "inf", '"foo: 1234abcd"',
                   '{"model":"6ce0161689","lora:x":"ab, cd"}', '[{"modelVersionId":1},{"air":"urn:x","weight":0.8}]',
                   "ComfyUI", "", '"unterminated', "{unclosed", "3.5", "sd:/nowhere/model.safetensors")
# Last lines that made the old reader quadratic (tens of seconds at this length).
HOSTILE_LINES = ("word " * 6400, "Steps: 20, Seed: 1, " + "a" * 32_000, "Steps: 20, Seed: 1, a" + " " * 32_000,
                 "Steps: 20, Seed: 1, " + 'k: "x, ' * 4500, "Steps: 20, Seed: 1, k: " + "[" * 16_000 + "]" * 16_000)


def _int_text(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an int beyond Python's 4,300-digit str() limit
        return "9" * 5000


def infotexts() -> SearchStrategy:
    """Parameters texts: real infotext pieces, odd values, garbage keys and separators, hostile lines."""
    key = st.one_of(st.sampled_from(INFOTEXT_KEYS), st.sampled_from(INFOTEXT_KEYS), texts())
    value = st.one_of(st.sampled_from(INFOTEXT_VALUES), st.sampled_from(INFOTEXT_VALUES), texts(),
                      numbers().map(_int_text))
    pair = st.tuples(key, value).map(lambda kv: f"{kv[0]}: {kv[1]}")
    line = st.tuples(st.lists(st.one_of(pair, pair, pair, texts()), max_size=14),
                     st.sampled_from((", ", ",", " ", ", ,"))).map(lambda p: p[1].join(p[0]))
    negative = st.one_of(st.just(""), texts().map(lambda t: "Negative prompt: " + t))
    whole = st.tuples(st.one_of(st.just("a red heart, glossy"), texts()), negative, line,
                      st.sampled_from(("\n", "\r\n", "\n\n"))).map(lambda p: p[3].join(x for x in p[:3] if x))
    return st.one_of(whole, whole, whole, texts(), st.sampled_from(HOSTILE_LINES).map(lambda t: "cat\n" + t))


def _run_parameters_text(text: str, _folder: Path) -> None:
    """A parse, then what follows it in the studio: fitted to the embedded model, validated, written back,
    restored into the panel. A parsed and fitted request must be one the engine runs."""
    from studio.engine.limits import max_side
    from studio.engine.model_fit import ModelTraits, fit_to_model
    from studio.engine.request import GenerationRequest, validate_request
    from studio.io.parameters import format_parameters, parse_parameters
    from studio.state.panel_values import PanelValues

    parsed = parse_parameters(text, GenerationRequest(sampler="euler", width=64, height=64))
    assert all(isinstance(n, str) and n and "\n" not in n for n in parsed.notices), parsed.notices
    r = parsed.request
    fitted = fit_to_model(r.width, r.height, r.clip_skip, ModelTraits("Embedded", (64, 64), 8, False))
    r = r.with_changes(width=fitted.width, height=fitted.height, clip_skip=fitted.clip_skip)
    validate_request(r, 8, max_side("embedded"), "Embedded")
    assert parse_parameters(format_parameters(r), r).request == r
    fields_ = {name: getattr(r, name) for name in PanelValues().request_fields()}
    values, _ = PanelValues.from_request_fields_with_notices(fields_, PanelValues())
    check_in_limits(values)
    restore_panel(values)


def _png_with_text(text: str, image: bytes | None = None) -> bytes:
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("parameters", text.encode("utf-8", "replace").decode("utf-8"))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _load_the_engine_once() -> None:
    # torch's first import takes seconds: done while drawing the first input, outside the per-input time
    # limit (an alarm inside an import leaves torch half-initialised for every later input).
    from studio.engine.models.registry import load_model

    load_model("toy")


def params_files() -> SearchStrategy:
    """(kind, bytes) for --params-from: PNGs carrying parameters (whole or cut short), any image bytes,
    noise, a folder, a missing file."""
    return st.deferred(lambda: (_load_the_engine_once(), _params_files())[1])


def _params_files() -> SearchStrategy:
    with_text = infotexts().map(_png_with_text)
    cut = st.tuples(with_text, st.floats(0, 1)).map(lambda p: p[0][: int(len(p[0]) * p[1])])
    return st.one_of(
        with_text.map(lambda b: ("file", b)), with_text.map(lambda b: ("file", b)), cut.map(lambda b: ("file", b)),
        image_bytes().map(lambda b: ("file", b)), st.binary(max_size=300).map(lambda b: ("file", b)),
        st.sampled_from((("folder", b""), ("missing", b""), ("file", b""))),
    )


def _run_params_from(value: tuple[str, bytes], folder: Path) -> None:
    """``python -m studio generate --params-from FILE`` on the toy model, one step: exit 0, or exit 2 with
    one ``error:`` line; never a traceback."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from studio.cli import main

    kind, data = value
    path = folder / "earlier.png"
    if kind == "folder":
        path.mkdir()
    elif kind == "file":
        path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["generate", "--params-from", str(path), "--model", "toy", "--steps", "1", "--quiet",
                     "--out", str(folder / "out.png")])
    said = [line for line in err.getvalue().splitlines() if not line.startswith("note: ")]
    assert code in (0, 2), code
    assert (said == []) if code == 0 else (len(said) == 1 and said[0].startswith("error: ")), said


def _studio_folders() -> SearchStrategy:
    return st.fixed_dictionaries({}, optional={"settings": json_bytes(_settings_documents()),
                                               "autosave": _autosave_folders(), "history": _history_folders()})


def _start_and_close(root: Path) -> tuple[str, Any]:
    """Build the real window on ``root`` as ``python main.py`` does (no engine), close it; its banner text."""
    from studio.app import create_studio
    from studio.state.paths import StudioPaths

    qt_app()
    studio = create_studio(StudioPaths.under(root))
    try:
        studio.window.show()
        banner = studio.window.banner.text()
        values = studio.window.panel.values()
        check_in_limits(values)
        studio.controller.shutdown()  # writes settings and the autosave, as closing the window does
    finally:
        from PySide6.QtCore import QCoreApplication, QEvent

        studio.window.close()
        studio.controller.writer.close()
        studio.window.deleteLater()
        # Deleted now, not at an event loop that never runs here: a window left alive keeps its
        # application-wide event filter (window_shortcuts.py), and every later input gets slower.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return banner, values


def _run_studio_start(files: dict[str, Any], folder: Path) -> None:
    """Bad files in all the studio's folders at once: the window opens, says what it set aside, and the
    files it writes on closing give a clean second start."""
    if "settings" in files:
        _write_settings(files["settings"], folder)
    if "autosave" in files:
        _write_autosave(files["autosave"], folder)
    if "history" in files:
        _write_history(files["history"], folder)
    banner, _ = _start_and_close(folder)
    set_aside = [p.name for p in folder.rglob("*") if ".corrupt-" in p.name or p.parent.name == "set-aside"]
    assert not set_aside or banner, f"{set_aside} set aside without a message"
    again, _ = _start_and_close(folder)
    assert again == "", f"the second start still complains: {again}"


_PROMPT_TOKENS = [*"[]():|\\ .0123456789-+eE\n", "red ", "blue", "circle", "BREAK", "é", "[a:b:2]", "[x|y]",
                  "(w:1.2)", "::", "0.5", "1e400"]
_PATHOLOGICAL_PROMPTS = ("[" * 3000, "(" * 3000 + "x", "[a|b]" * 400, "[a:" * 6_666, "(a:[b|c])" * 300,
                         "x" * 50_000 + "[a:b:2]", "[a:b:1e400]", "\\", "a|b [c:d:2]")


def _prompts_and_steps() -> SearchStrategy:
    syntax = st.lists(st.sampled_from(_PROMPT_TOKENS), max_size=40).map("".join)
    prompts = st.one_of(syntax, texts(), st.sampled_from(_PATHOLOGICAL_PROMPTS))
    return st.tuples(prompts, prompts, st.integers(min_value=1, max_value=1000)).map(_toy_runner_ready)


_TOY_RUNNER: list[Any] = []


def _toy_runner_ready(value: Any) -> Any:
    """Load torch and the toy model while drawing, outside run_one's time limit (an alarm inside torch's
    first import leaves it half-registered)."""
    if not _TOY_RUNNER:
        from studio.engine.models.toy import ToyShapesModel
        from studio.engine.runner import Runner

        _TOY_RUNNER.append(Runner(ToyShapesModel(), keep_histories=1))
    return value


def _run_prompt_schedule(value: tuple[str, str, int], _folder: Path) -> None:
    from studio.engine.prompt_schedule import prompt_schedule

    prompt, negative, steps = value
    ends = [end for end, _ in prompt_schedule(prompt, steps)]
    assert ends == sorted(set(ends)) and ends[0] >= 1 and ends[-1] == steps, f"bad schedule ends {ends}"
    # The engine takes the same prompts through a short run of the built-in toy model.
    from studio.engine.request import GenerationRequest, RequestError

    request = GenerationRequest(prompt=prompt, negative_prompt=negative, sampler="euler", steps=min(steps, 3),
                                cfg_scale=2.0, width=8, height=8)
    try:
        _TOY_RUNNER[0].run(request)
    except RequestError:
        pass


TARGETS: list[FuzzTarget] = [
    FuzzTarget("PanelValues.from_json", _panel_documents(), _run_panel_from_json, ()),
    FuzzTarget("PanelValues.from_request_fields", _request_fields(), _run_panel_from_request, ()),
    FuzzTarget("settings.json", json_bytes(_settings_documents()), _run_settings, ()),
    FuzzTarget("autosave folder", _autosave_folders(), _run_autosave, ()),
    FuzzTarget("history folder", _history_folders(), _run_history, ()),
    # Two window builds per input (about 0.3 s on an idle 2-core machine, several times that when busy).
    FuzzTarget("studio start", _studio_folders(), _run_studio_start, (), suite_examples=8, time_limit_s=10.0),
    FuzzTarget("prompt schedule", _prompts_and_steps(), _run_prompt_schedule, ()),
    FuzzTarget("parameters text", infotexts(), _run_parameters_text, (ParametersError,)),
    # A generation per readable input (the toy model, one step): fewer inputs in the suite.
    FuzzTarget("--params-from file", params_files(), _run_params_from, (), suite_examples=25, time_limit_s=5.0),
]

# What the engine reads (model files, the model-folder scan, image files, request fields): its own module.
from tests.fuzz_engine_targets import engine_targets  # noqa: E402  (needs the helpers above)

TARGETS += engine_targets()

# Textual-inversion embedding files (pickles and safetensors of any structure): their own module.
from tests.fuzz_embedding_targets import embedding_targets  # noqa: E402

TARGETS += embedding_targets()
