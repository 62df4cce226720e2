"""studio/serve/wire.py: requests, images and events survive the trip as they are, and bad input is named."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from studio.engine.request import ControlUnit, GenerationRequest, RequestError, StepEvent
from studio.serve import wire
from studio.serve.security import ClientQueues, TooLarge, check_listen, token_matches


def _image(h=16, w=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_request_round_trips_with_images():
    mask = (np.random.default_rng(1).integers(0, 256, (16, 24)) / 255.0).astype(np.float32)
    request = GenerationRequest(prompt="a cat", negative_prompt="dog", model="toy", sampler="euler_a", steps=7,
                                cfg_scale=3.25, seed=2**63 - 1, width=24, height=16, strength=0.6,
                                guidance_interval=(0.5, 7.0), dynamic_threshold=0.99, init_image=_image(),
                                mask=mask, hires_scale=0.0,
                                controlnets=(ControlUnit("canny_net", _image(seed=2), "canny", 0.5, 0.1, 0.9),))
    payload = json.loads(json.dumps(wire.run_payload(request)))  # through real JSON text
    back = wire.request_from_json(payload["request"], payload["images"])
    assert back == request  # every scalar field, ints, floats and the interval exactly
    assert np.array_equal(back.init_image, request.init_image)
    assert np.array_equal(back.mask, mask)  # a mask of k/255 values survives PNG's L exactly
    assert np.array_equal(back.controlnets[0].image, request.controlnets[0].image)
    assert back.controlnets[0] == request.controlnets[0]


@pytest.mark.parametrize(("fields", "field"), [
    ({"steps": "20"}, "steps"), ({"steps": 2.5}, "steps"), ({"cfg_scale": True}, "cfg_scale"),
    ({"prompt": 3}, "prompt"), ({"guidance_interval": [1]}, "guidance_interval"), ({"bogus": 1}, "bogus"),
    ({"controlnets": [{"model": "x", "path": "/etc"}]}, "controlnets"), ({"init_image": "x"}, "init_image"),
])
def test_bad_fields_name_the_field(fields, field):
    with pytest.raises(RequestError) as caught:
        wire.request_from_json(fields)
    assert caught.value.field == field


def test_whole_floats_are_ints_and_ints_are_floats():
    request = wire.request_from_json({"steps": 12.0, "cfg_scale": 4})
    assert request.steps == 12 and type(request.steps) is int
    assert request.cfg_scale == 4.0 and type(request.cfg_scale) is float


def test_image_limits_are_checked_before_decoding():
    big = Image.new("L", (5000, 8))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    with pytest.raises(TooLarge, match="5000x8"):
        wire.image_from_png_b64(base64.b64encode(buffer.getvalue()).decode(), "mask")
    with pytest.raises(TooLarge):
        wire.image_from_png_b64("A" * 2000, "init_image", max_bytes=1000)
    with pytest.raises(RequestError, match="not valid base64"):
        wire.image_from_png_b64("not base64!", "init_image")
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    with pytest.raises(RequestError, match="not a readable PNG"):
        wire.image_from_png_b64(base64.b64encode(jpeg.getvalue()).decode(), "init_image")


def test_rgba_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    encoded = base64.b64encode(wire.png_bytes(rgba[..., :3])).decode()
    assert wire.image_from_png_b64(encoded).max() == 0
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    assert wire.image_from_png_b64(base64.b64encode(buffer.getvalue()).decode(), mode="RGB").min() == 255


def test_step_event_round_trips():
    latent = np.random.default_rng(3).standard_normal((4, 2, 3)).astype(np.float32)
    event = StepEvent(1, 3, 10, 2.5, _image(8, 8), latent, 0.25, hires_start=True)
    line = wire.event_line(wire.event_to_json(event, "abc", latents=True))
    assert line.endswith(b"\n") and b"\n" not in line[:-1]
    back = wire.event_from_json(line)
    assert back["type"] == "step" and back["run"] == "abc" and back["index"] == 3 and back["hires_start"]
    assert np.array_equal(back["preview"], event.preview)
    assert np.array_equal(back["latent"], latent)
    assert "latent" not in wire.event_to_json(event, "abc")


def test_result_png_carries_parameters():
    data = wire.png_bytes(_image(), "a cat\nSteps: 3")
    assert Image.open(io.BytesIO(data)).info["parameters"] == "a cat\nSteps: 3"


def test_malformed_and_nan_bodies_are_refused():
    with pytest.raises(RequestError, match="not valid JSON"):
        wire.loads_body(b"{\"request\": ")
    with pytest.raises(RequestError, match="NaN"):
        wire.loads_body(b"{\"x\": NaN}")
    assert wire.loads_body(b"{\"x\": 1}") == {"x": 1}


def test_token_and_listen_and_queues():
    assert token_matches(None, None) and token_matches("t0ken", "Bearer t0ken")
    assert not token_matches("t0ken", "Bearer t0kem") and not token_matches("t0ken", None)
    assert not token_matches("t0ken", "t0ken")
    check_listen("127.0.0.1", None)
    check_listen("::1", None)
    with pytest.raises(ValueError, match="--token"):
        check_listen("0.0.0.0", None)
    check_listen("0.0.0.0", "secret")
    queues = ClientQueues(limit=2)
    assert queues.enter("a") and queues.enter("a") and not queues.enter("a") and queues.enter("b")
    queues.leave("a")
    assert queues.enter("a") and queues.count("a") == 2
