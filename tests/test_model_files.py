"""Model files as users' disks hold them: damaged, truncated, foreign or hostile files get the studio's
ModelLoadError naming the file, and none of them keeps the scan (or the engine) from listing the good ones."""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path

import pytest
import torch

from studio.engine.devices import is_out_of_memory, pick_device
from studio.engine.models.errors import ModelLoadError
from studio.engine.models.registry import scan_models
from studio.engine.models.sd.discovery import scan
from studio.engine.models.sd.safety import read_checkpoint, read_safetensors_header

# Tensor names are all detection reads: these make an SD 1.x checkpoint as far as the scan can tell.
SD1_NAMES = ("model.diffusion_model.input_blocks.0.0.bias", "cond_stage_model.transformer.x.bias",
             "first_stage_model.decoder.x.bias")


def safetensors_bytes(header: bytes | str, data: bytes = b"", length: int | None = None) -> bytes:
    header = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def sd1_file(path: Path) -> Path:
    header = {name: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]}
              for i, name in enumerate(SD1_NAMES)}
    path.write_bytes(safetensors_bytes(json.dumps(header), b"\0" * 4 * len(SD1_NAMES)))
    return path


ENTRY = '{"model.diffusion_model.x": {"dtype": "F32", "shape": [%s], "data_offsets": [0, 4]}}'
BAD_HEADERS = {
    "infinity": safetensors_bytes(ENTRY % "Infinity", b"\0" * 4),
    "nan": safetensors_bytes(ENTRY % "NaN", b"\0" * 4),
    "overflowing number": safetensors_bytes(ENTRY % "1e400", b"\0" * 4),
    "float dimension": safetensors_bytes(ENTRY % "1.5", b"\0" * 4),
    "negative dimension": safetensors_bytes(ENTRY % "-1", b"\0" * 4),
    "deep nesting": safetensors_bytes("[" * 100_000),
    "deep object": safetensors_bytes('{"a":' * 50_000 + "1" + "}" * 50_000),
    "huge header length": safetensors_bytes("{}", length=2**63),
    "negative header length": struct.pack("<q", -5) + b"{}",
    "a JSON list": safetensors_bytes("[1, 2]"),
    "not UTF-8": safetensors_bytes(b'{"\xff\xfe": 1}'),
    "entry not an object": safetensors_bytes('{"model.diffusion_model.x": 5}'),
    "offsets reversed": safetensors_bytes(
        '{"model.diffusion_model.x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', b"\0" * 4),
    "truncated": safetensors_bytes(
        '{"model.diffusion_model.x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', b"\0" * 3),
    "seven bytes": b"\x01\x02\x03\x04\x05\x06\x07",
    "empty": b"",
}


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_a_bad_safetensors_header_is_a_model_load_error_naming_the_file(tmp_path, case):
    path = tmp_path / "model.safetensors"
    path.write_bytes(BAD_HEADERS[case])
    with pytest.raises(ModelLoadError, match=r"^model\.safetensors (is|has)"):
        read_safetensors_header(path)


def diffusers_folder(root: Path, unet_config: str, text_config: str = '{"hidden_act": "quick_gelu"}') -> Path:
    for sub, text in (("unet", unet_config), ("text_encoder", text_config), ("vae", "{}")):
        (root / sub).mkdir(parents=True)
        (root / sub / "config.json").write_text(text)
        (root / sub / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    return root


BAD_CONFIGS = {
    "a JSON list": ("[1, 2]", "holds a JSON list"),
    "garbage": ("garbage{", "is not valid JSON"),
    "deep nesting": ("[" * 100_000, "nested too deeply"),
    "Infinity": ('{"in_channels": Infinity}', "Infinity"),
    "text instead of a number": ('{"in_channels": "four"}', "input channels"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_diffusers_folder_with_a_bad_config_is_reported_by_the_scan(tmp_path, case):
    text, words = BAD_CONFIGS[case]
    folder = diffusers_folder(tmp_path / "models" / "broken-model", text)
    found = scan([tmp_path / "models"], include_defaults=False)
    assert found.found == []
    [skipped] = found.skipped
    assert skipped.path == folder and "broken-model" in skipped.reason and words in skipped.reason


def test_a_text_encoder_config_that_is_a_list_is_reported(tmp_path):
    diffusers_folder(tmp_path / "models" / "m", '{"in_channels": 4}', "[]")
    [skipped] = scan([tmp_path / "models"], include_defaults=False).skipped
    assert "m/text_encoder/config.json holds a JSON list" in skipped.reason


def test_one_bad_file_never_hides_the_good_models_it_sits_beside(tmp_path):
    folder = tmp_path / "Stable-diffusion"
    folder.mkdir()
    good = sd1_file(folder / "good.safetensors")
    for i, data in enumerate(BAD_HEADERS.values()):
        (folder / f"bad-{i}.safetensors").write_bytes(data)
    diffusers_folder(folder / "broken-pipeline", "[]")
    (folder / "unreadable.safetensors").mkdir()  # a folder with a model's name is not a model either
    entries, skipped = scan_models([folder])
    sd = [e for e in entries if e.key.startswith("sd:")]
    assert [e.key for e in sd] == [f"sd:{good}"] and sd[0].family == "sd1"
    assert entries[0].key in ("embedded", "toy")  # the built-ins stay listed first
    assert len(skipped) == len(BAD_HEADERS) + 1
    assert all(".safetensors" in r or "broken-pipeline" in r for r in skipped)


def test_the_engine_becomes_ready_with_bad_files_in_its_model_folder(tmp_path, qtbot):
    from studio.worker import EngineClient

    sd1_file(tmp_path / "good.safetensors")
    (tmp_path / "inf.safetensors").write_bytes(BAD_HEADERS["infinity"])
    diffusers_folder(tmp_path / "list-config", "[1]")
    client = EngineClient()
    try:
        with qtbot.waitSignal(client.ready, timeout=60_000) as blocker:
            client.start("cpu", 0, "toy", (str(tmp_path),))
        catalog = blocker.args[0]
        assert f"sd:{tmp_path / 'good.safetensors'}" in {m.key for m in catalog.models}
        assert len(catalog.skipped_models) == 2
        assert any("inf.safetensors" in r and "Infinity" in r for r in catalog.skipped_models)
    finally:
        client.stop()


def test_a_scan_that_fails_outright_still_makes_the_engine_ready(monkeypatch):
    from studio.worker import engine_session

    def broken_scan(_dirs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(engine_session, "scan_models", broken_scan)
    catalog = engine_session.EngineSession("cpu").catalog()
    assert catalog.models and catalog.skipped_models[0].startswith("The model folders could not be searched")


# -- pickles ------------------------------------------------------------------------------------------------


class _Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_a_malicious_ckpt_gets_the_studios_message_alone(tmp_path):
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "callback": _Payload()}, evil)
    with pytest.raises(ModelLoadError) as info:
        read_checkpoint(evil)
    message = str(info.value)
    assert message.startswith("evil.ckpt was refused: it asks to run print")
    assert "weights_only" not in message and "\x1b" not in message and "trusted source" not in message
    assert message.isprintable()


@pytest.mark.parametrize("data", [b"garbage pickle", b"PK\x03\x04garbage", b"", b"\x80\x02]q\x00."])
def test_a_damaged_ckpt_is_a_model_load_error_without_torchs_advice(tmp_path, data):
    path = tmp_path / "damaged.ckpt"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=r"^damaged\.ckpt (was refused|could not be read|holds)") as info:
        read_checkpoint(path)
    assert "weights_only" not in str(info.value) and "\x1b" not in str(info.value)


# -- seams --------------------------------------------------------------------------------------------------


def test_the_model_families_do_not_import_the_registry():
    """The registry imports the families; importing it back from them made a circle (ModelLoadError)."""
    models = Path(__file__).resolve().parents[1] / "studio" / "engine" / "models"
    for path in [*models.glob("sd/*.py"), models / "errors.py", models / "base.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "registry" not in (node.module or ""), f"{path.name} imports the registry"


def test_the_cpu_allocators_message_is_out_of_memory():
    with pytest.raises(RuntimeError) as info:
        torch.empty(2**62, dtype=torch.uint8)  # the CPU allocator refuses at once, nothing is touched
    assert is_out_of_memory(info.value)
    assert is_out_of_memory(MemoryError()) and is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch")) and not is_out_of_memory(ValueError("memory"))


def test_one_device_picker_falls_back_to_the_cpu():
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device("cuda") == torch.device("cpu") and pick_device("cuda:3") == torch.device("cpu")
    assert pick_device("no-such-device") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")


def test_the_window_starts_and_names_the_skipped_files(qtbot, tmp_path, monkeypatch):
    from studio.app import create_studio
    from studio.engine.models.sd.discovery import ENV_DIRS
    from studio.state.paths import StudioPaths

    models = tmp_path / "models"
    models.mkdir()
    (models / "inf.safetensors").write_bytes(BAD_HEADERS["infinity"])
    monkeypatch.setenv(ENV_DIRS, str(models))
    studio = create_studio(StudioPaths.under(tmp_path / "home"))
    qtbot.addWidget(studio.window)
    studio.start_engine()
    try:
        qtbot.waitUntil(lambda: studio.window.status.engine_label.text().startswith("Ready"), timeout=60_000)
        assert "Skipped 1 model file: inf.safetensors has a corrupt safetensors header" in studio.window.banner.text()
    finally:
        studio.controller.shutdown()


def test_the_models_command_lists_good_models_and_reports_bad_files(tmp_path, monkeypatch, capsys):
    from studio.cli import main
    from studio.engine.models.sd.discovery import ENV_DIRS

    sd1_file(tmp_path / "good.safetensors")
    (tmp_path / "deep.safetensors").write_bytes(BAD_HEADERS["deep nesting"])
    monkeypatch.setenv(ENV_DIRS, str(tmp_path))
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "good (SD 1.x)" in out and "deep" not in out
    assert "skipped: deep.safetensors has a corrupt safetensors header (it is nested too deeply)" in err
