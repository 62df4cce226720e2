"""The server's HTTP API on a real local Ray cluster (tests/serve_cluster.py): runs stream step by step, and what
a client must not do is refused before anything runs (token, size, JSON, model names)."""

import base64
import http.client
import io
import json

import numpy as np
import pytest
from PIL import Image
from serve_http import call, error_of, run_events

from studio import __version__
from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest
from studio.engine.runner import Runner
from studio.io.parameters import format_parameters
from studio.serve import wire


def test_health_and_models(serve_url):
    status, body = call(serve_url, "/v1/health")
    assert status == 200
    health = json.loads(body)
    assert health == {"version": __version__, "replicas": 2, "device": "cpu", "queue_limit": 4}
    models = json.loads(call(serve_url, "/v1/models")[1])
    assert "toy" in [m["key"] for m in models["models"]]
    assert ["dpmpp_2m", "DPM++ 2M"] in models["samplers"] and "karras" in models["spacings"]


def test_a_run_streams_its_steps_and_ends_with_the_local_runs_image(serve_url):
    request = GenerationRequest(prompt="a red square", model="toy", sampler="euler_a", steps=6, seed=11,
                                cfg_scale=2.0)
    events = run_events(serve_url, wire.run_payload(request, latents=True))
    assert [e["type"] for e in events] == ["started"] + ["step"] * 6 + ["result"]
    run = events[0]["run"]
    assert len(run) == 32 and all(e["run"] == run for e in events)
    assert [e["index"] for e in events[1:-1]] == list(range(6)) and events[1]["total"] == 6
    steps = [wire.event_from_json(e) for e in events[1:-1]]
    local = Runner(ToyShapesModel())
    seen = []
    expected = local.run(request, on_step=seen.append)
    for got, want in zip(steps, seen, strict=True):
        assert got["sigma"] == want.sigma
        assert np.array_equal(got["latent"], want.latent) and np.array_equal(got["preview"], want.preview)
    result = wire.event_from_json(events[-1])
    assert np.array_equal(result["image"], expected.image)
    text = format_parameters(request, local.model.info.name, expected.infotext)
    assert result["parameters"] == text
    assert Image.open(io.BytesIO(base64.b64decode(events[-1]["image"]))).info["parameters"] == text
    assert result["steps_run"] == 6 and result["parent"] is None


def test_an_engine_error_ends_the_stream_with_its_field(serve_url):
    payload = wire.run_payload(GenerationRequest(model="toy", steps=4, width=30))
    events = run_events(serve_url, payload)
    assert events[-1]["type"] == "error" and events[-1]["field"] == "width"
    assert "multiple of" in events[-1]["error"]


@pytest.mark.parametrize("token", [None, "wrong", "t0ke", "T0KEN"])
def test_a_wrong_token_is_refused_and_runs_nothing(serve_url, token):
    for path, body in (("/v1/health", None), ("/v1/models", None), ("/v1/runs", {"request": {"steps": 3}}),
                       ("/v1/runs/abc/cancel", {}), ("/v1/runs/abc/state?step=0", None)):
        status, message, _ = error_of(call(serve_url, path, body, token=token))
        assert status == 401 and "token" in message


def test_malformed_json_is_400_with_a_message(serve_url):
    status, message, _ = error_of(call(serve_url, "/v1/runs", raw=b'{"request": {"steps": 3,'))
    assert status == 400 and "not valid JSON" in message
    status, message, field = error_of(call(serve_url, "/v1/runs", {"request": {"steps": "many"}}))
    assert status == 400 and field == "steps"
    status, message, field = error_of(call(serve_url, "/v1/runs", {"request": {}, "pickle": "x"}))
    assert status == 400 and field == "pickle"
    status, message, field = error_of(call(serve_url, "/v1/runs", [1, 2]))
    assert status == 400


def test_oversized_bodies_and_images_are_413(serve_url):
    # Refused from its Content-Length, before the body is read: the client has sent 1 KiB of it.
    host, port = serve_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/runs")
    for name, value in (("Authorization", "Bearer t0ken"), ("Content-Type", "application/json"),
                        ("Content-Length", str(64 * 2**20 + 1))):
        connection.putheader(name, value)
    connection.endheaders(b" " * 1024)
    reply = connection.getresponse()
    assert reply.status == 413 and "64 MiB" in json.loads(reply.read())["error"]
    connection.close()
    huge = Image.new("L", (4097, 16))
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    payload = {"request": {"model": "toy", "width": 32, "height": 32},
               "images": {"init": base64.b64encode(buffer.getvalue()).decode()}}
    status, message, field = error_of(call(serve_url, "/v1/runs", payload))
    assert status == 413 and field == "init_image" and "4097x16" in message


@pytest.mark.parametrize("model", ["../../etc/passwd", "sd:/etc/passwd", "/etc/passwd", "sd:../toy", "toy/..",
                                   "embedded\x00", "TOY"])
def test_model_names_outside_the_catalog_are_404(serve_url, model):
    status, message, field = error_of(call(serve_url, "/v1/runs", {"request": {"model": model, "steps": 2}}))
    assert status == 404 and field == "model" and "/v1/models" in message


def test_unknown_runs_and_steps(serve_url):
    assert call(serve_url, "/v1/runs/nope/state?step=0")[0] == 404
    assert error_of(call(serve_url, "/v1/runs/nope/state?step=two"))[::2] == (400, "step")
    status, message, _ = error_of(call(serve_url, "/v2/anything"))
    assert status == 404 and "/v1" in message
    assert call(serve_url, "/v1/runs/nope/cancel", {})[0] == 404
    events = run_events(serve_url, wire.run_payload(GenerationRequest(model="toy", steps=3, seed=1)))
    run = events[0]["run"]
    status, message, _ = error_of(call(serve_url, f"/v1/runs/{run}/state?step=3"))
    assert status == 409 and "steps 0 to 2" in message
    assert json.loads(call(serve_url, f"/v1/runs/{run}/cancel", {})[1]) == {"cancelled": False}  # already done
    branch = {"request": {"model": "toy", "steps": 3}, "branch": {"run": "gone", "step": 1}}
    status, message, field = error_of(call(serve_url, "/v1/runs", branch))
    assert status == 409 and field == "branch"


def test_files_named_by_path_are_never_opened(serve_url, tmp_path):
    # An upscaler file that exists, outside the server's folders: refused as a path before the file system is asked.
    outside = tmp_path / "4x-Outside.pth"
    outside.write_bytes(b"not a model")
    payload = {"request": {"model": "toy", "steps": 2, "hires_scale": 2.0, "hires_upscaler": str(outside)}}
    events = run_events(serve_url, payload)
    assert events[-1]["type"] == "error" and events[-1]["field"] == "hires_upscaler"
    assert "is a path" in events[-1]["error"]
    for refiner in ("/etc/passwd", "sd:" + str(outside), "../toy"):
        status, _, field = error_of(call(serve_url, "/v1/runs", {"request": {"model": "toy", "refiner": refiner}}))
        assert status == 404 and field == "refiner"


def test_an_adapter_library_without_paths_takes_names_only(tmp_path):
    from studio.engine.models.sd.adapter_files import AdapterLibrary, AdapterNotFound

    lora = tmp_path / "outside.safetensors"
    lora.write_bytes(b"{}")
    assert AdapterLibrary(include_defaults=False).find("lora", str(lora)).path == lora  # the desktop's own files
    with pytest.raises(AdapterNotFound):
        AdapterLibrary(include_defaults=False, allow_paths=False).find("lora", str(lora))
    inside = tmp_path / "models" / "Lora"
    inside.mkdir(parents=True)
    (inside / "mine.safetensors").write_bytes(b"{}")
    library = AdapterLibrary((tmp_path / "models",), include_defaults=False, allow_paths=False)
    assert library.find("lora", "mine").path == inside / "mine.safetensors"
