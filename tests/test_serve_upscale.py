"""Upscales on the studio server (``POST /v1/upscales``): the session's server (tests/serve_cluster.py) with an
ESRGAN file in its model folder, reached over plain HTTP and through the studio's client; the same pixels as an
upscale on this computer, progress per tile, cancel, and refusals that name the field to fix."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from contextlib import aclosing

import numpy as np
import pytest
from serve_cluster import TOKEN, UPSCALER
from serve_http import call, error_of, open_run

from studio.engine.models.sd.adapter_files import AdapterLibrary
from studio.engine.upscalers import upscale_image
from studio.serve.client import ServerError, StudioServer
from studio.serve.upscales import upscale_payload

needs_spandrel = pytest.mark.skipif(importlib.util.find_spec("spandrel") is None, reason="spandrel not installed")
RNG = np.random.default_rng(7)
PICTURE = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)


def upscale_events(url: str, image: np.ndarray, upscaler: str, scale: float, tile: int = 256) -> list[dict]:
    async def collect() -> list[dict]:
        async with StudioServer(url, TOKEN) as server:
            return [event async for event in server.upscale(image, upscaler, scale, tile)]

    return asyncio.run(collect())


def here(image: np.ndarray, upscaler: str, scale: float, tile: int, folder) -> np.ndarray:
    """The same upscale on this computer, from the server's folder, on one thread as the replicas run."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        library = AdapterLibrary((str(folder),), include_defaults=False, allow_paths=False)
        return upscale_image(image, scale, upscaler, library=library, tile=tile, device="cpu")
    finally:
        torch.set_num_threads(threads)


def test_lanczos_on_the_server_gives_the_pixels_it_gives_here(serve_url):
    events = upscale_events(serve_url, PICTURE, "lanczos", 1.5)
    assert [e["type"] for e in events] == ["started", "result"]
    result = events[-1]
    assert result["label"] == "Lanczos" and result["scale"] == 1.5 and result["image"].shape == (60, 84, 3)
    assert np.array_equal(result["image"], upscale_image(PICTURE, 1.5, "lanczos"))


@needs_spandrel
def test_an_upscaler_file_of_the_server_runs_tile_by_tile_with_its_progress(serve_server):
    events = upscale_events(serve_server.url, PICTURE, UPSCALER, 2, tile=32)
    kinds = [e["type"] for e in events]
    progress = [(e["done"], e["total"]) for e in events if e["type"] == "progress"]
    assert kinds[0] == "started" and kinds[-1] == "result" and len(progress) >= 4
    assert progress == [(i + 1, progress[0][1]) for i in range(progress[0][1])]  # every tile, in order
    result = events[-1]
    assert result["label"] == UPSCALER and result["image"].shape == (80, 112, 3)
    expected = here(PICTURE, UPSCALER, 2, 32, serve_server.models)
    assert np.abs(result["image"].astype(int) - expected).max() <= 1  # the same network, weights and tiles


@needs_spandrel
def test_cancel_stops_an_upscale_after_its_current_tile(serve_url):
    big = RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # 64 tiles of 32 px

    async def cancel_after_two_tiles() -> list[dict]:
        seen = []
        async with StudioServer(serve_url, TOKEN) as server:
            async with aclosing(server.upscale(big, UPSCALER, 2, tile=32)) as events:
                async for event in events:
                    seen.append(event)
                    if event["type"] == "progress" and event["done"] == 2:
                        assert await server.cancel(seen[0]["run"])
        return seen

    events = asyncio.run(cancel_after_two_tiles())
    assert events[-1]["type"] == "cancelled"
    done = [e["done"] for e in events if e["type"] == "progress"]
    assert 2 <= done[-1] < 64


@pytest.mark.parametrize(("body", "field"), [
    ({"upscaler": "lanczos", "scale": 2}, "image"),
    ({"image": "not base64!", "upscaler": "lanczos", "scale": 2}, "image"),
    ({"upscaler": "lanczos", "scale": "2"}, "scale"),
    ({"upscaler": "", "scale": 2}, "upscaler"),
    ({"upscaler": "lanczos", "scale": 2, "tile": 1.5}, "tile"),
    ({"upscaler": "lanczos", "scale": 2, "denoise": 0.3}, "denoise"),
])
def test_a_malformed_upscale_is_400_naming_its_field(serve_url, body, field):
    image = upscale_payload(PICTURE, "lanczos", 2)["image"]
    sent = {"image": image} | body if "image" not in body and field != "image" else body
    status, message, named = error_of(call(serve_url, "/v1/upscales", sent))
    assert (status, named) == (400, field), message


def test_an_oversized_image_is_413_and_a_missing_token_401(serve_url):
    from studio.serve.security import MAX_IMAGE_SIDE

    wide = np.zeros((1, MAX_IMAGE_SIDE + 1, 3), np.uint8)
    status, message, field = error_of(call(serve_url, "/v1/upscales", upscale_payload(wide, "lanczos", 1)))
    assert (status, field) == (413, "image") and str(MAX_IMAGE_SIDE) in message
    assert call(serve_url, "/v1/upscales", upscale_payload(PICTURE, "lanczos", 2), token=None)[0] == 401


@pytest.mark.parametrize(("upscaler", "scale", "field", "words"), [
    ("lanczos", 0, "scale", "factor"),
    ("lanczos", 400, "scale", "factor"),
    ("4x-UltraSharp", 4, "upscaler", "tiny-2x"),  # not on the server: the message names what is
])
def test_values_the_engine_refuses_end_the_stream_with_a_message(serve_url, upscaler, scale, field, words):
    with pytest.raises(ServerError) as raised:
        upscale_events(serve_url, PICTURE, upscaler, scale)
    assert raised.value.field == field and words in str(raised.value)


@needs_spandrel
def test_an_upscaler_named_by_a_path_is_never_opened(serve_server, tmp_path):
    """The server's own file by its full path, and one outside its folders: both refused, neither read."""
    inside = serve_server.models / "ESRGAN" / f"{UPSCALER}.pth"
    outside = tmp_path / "elsewhere" / "x4.pth"
    outside.parent.mkdir()
    outside.write_bytes(inside.read_bytes())
    for path in (str(inside), str(outside), f"../{outside.parent.name}/x4.pth", "../../etc/passwd"):
        status, body = call(serve_server.url, "/v1/upscales", upscale_payload(PICTURE, path, 2))
        lines = [json.loads(line) for line in body.splitlines()] if status == 200 else [json.loads(body)]
        assert lines[-1].get("field") == "upscaler" and "result" not in [e.get("type") for e in lines], (path, lines)


@needs_spandrel
def test_the_command_line_upscales_on_the_server_as_it_does_here(serve_server, tmp_path):
    import subprocess
    import sys

    from studio.io.png import load_image, save_image

    source = tmp_path / "in.png"
    save_image(source, PICTURE, "red circle\nSteps: 3, Sampler: Euler, Seed: 5, Size: 56x40")
    out = tmp_path / "out.png"
    command = [sys.executable, "-m", "studio", "upscale", str(source), "--upscaler", UPSCALER, "--scale", "2",
               "--tile", "32", "--server", serve_server.url, "--token", TOKEN, "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"with {UPSCALER} on {serve_server.url}" in proc.stdout and "tile 6/6" in proc.stderr
    expected = here(PICTURE, UPSCALER, 2, 32, serve_server.models)
    assert np.abs(load_image(out).astype(int) - expected).max() <= 1
    from studio.io.png import read_parameters

    assert read_parameters(out).endswith("Seed: 5, Size: 56x40")  # the input's parameters kept

    refused = subprocess.run(command[:-2] + ["--upscaler", "/etc/passwd"], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "is a path" in refused.stderr and "(--upscaler)" in refused.stderr
    assert "Traceback" not in refused.stderr


@needs_spandrel
def test_the_window_on_a_server_upscales_there_with_the_servers_upscaler(qtbot, tmp_path, serve_url):
    from test_remote_window import make_studio, on_server

    from studio.worker.qt_asyncio import release_loop

    studio = make_studio(qtbot, tmp_path, on_server(serve_url))
    try:
        studio.controller.upscaler.tile = 32
        studio.window.canvas.set_image(PICTURE)
        studio.window.upscale_action.trigger()
        dialog = studio.controller.upscaler.dialog
        qtbot.waitUntil(lambda: dialog.upscaler.findText(UPSCALER) >= 0, timeout=30_000)  # the server's list
        dialog.upscaler.setCurrentText(UPSCALER)
        dialog.scale.setValue(2)
        progress = []
        studio.engine.upscale_progress.connect(lambda p: progress.append((p.done, p.total)))
        with qtbot.waitSignal(studio.controller.upscaler.upscaled, timeout=30_000):
            dialog.upscale_button.click()
        assert progress[-1] == (6, 6) and studio.window.canvas.image().shape == (80, 112, 3)
        assert studio.window.history_view.model.entry(0).parameters.endswith(f"Postprocess upscaler: {UPSCALER}")

        dialog = studio.controller.upscaler.upscale_canvas()  # 80x112 now, 4x: more tiles, stopped at the first
        dialog.upscaler.setCurrentText(UPSCALER)
        dialog.scale.setValue(4)
        before = len(progress)
        dialog.upscale_button.click()
        qtbot.waitUntil(lambda: len(progress) > before, timeout=30_000)
        dialog.close_button.click()  # Cancel while it runs on the server
        qtbot.waitUntil(lambda: not dialog.running, timeout=30_000)
        assert dialog.error_label.text().startswith("Upscale cancelled after tile ")
        assert studio.window.canvas.image().shape == (80, 112, 3)
    finally:
        studio.controller.shutdown()
        release_loop()


def test_an_upscale_over_its_tokens_queue_limit_waits_its_turn(second_ingress):
    """Alice may have one job on the server: her upscale, sent while her run holds that place, is turned away
    (429) and sent again until the run ends, then finishes; the window's remote engine does this
    (studio/worker/remote_upscale.py), with its signals here a recorder."""
    import threading

    from serve_ingress import ALICE

    from studio.engine.request import GenerationRequest
    from studio.serve import wire
    from studio.state.upscale_jobs import UpscaleJob
    from studio.worker.remote_client import BUSY_RETRY_S
    from studio.worker.remote_upscale import RemoteUpscale, upscale_on_server

    class Signal:
        def __init__(self):
            self.seen = []

        def emit(self, value):
            self.seen.append(value)

    class Recorder:
        upscale_progress, upscale_finished, upscale_failed = Signal(), Signal(), Signal()

    class CountingServer(StudioServer):
        posted = 0

        def upscale(self, *args, **kwargs):
            CountingServer.posted += 1
            return super().upscale(*args, **kwargs)

    url = second_ingress.url
    long_run = wire.run_payload(GenerationRequest(prompt="red circle", model="toy", steps=1000, width=24, height=16))
    with open_run(url, long_run, token=ALICE) as alices:
        started = json.loads(alices.readline())
        rest = threading.Thread(target=lambda: [None for _ in alices], daemon=True)  # read it to its end
        rest.start()

        async def upscale_then_end_the_run():
            async with CountingServer(url, ALICE) as server:
                sent = RemoteUpscale(UpscaleJob(1, PICTURE, "lanczos", 2.0))
                job = asyncio.ensure_future(upscale_on_server(server, sent, Recorder(), lambda _run: None,
                                                              BUSY_RETRY_S))
                await asyncio.sleep(1.5)  # turned away and sent again meanwhile
                assert not job.done() and CountingServer.posted >= 2
                assert await server.cancel(started["run"])
                await asyncio.wait_for(job, 60)

        asyncio.run(upscale_then_end_the_run())
        rest.join(30)
    assert not Recorder.upscale_failed.seen, Recorder.upscale_failed.seen
    result = Recorder.upscale_finished.seen[0]
    assert result.job_id == 1 and np.array_equal(result.image, upscale_image(PICTURE, 2.0, "lanczos"))
