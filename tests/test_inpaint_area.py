"""'Only masked' inpainting (a crop around the mask at the request's size, pasted back) and the masked
content choices (original, fill, latent noise, latent nothing), on the toy model: fast and pixel-space."""

import numpy as np
import pytest
import torch

from studio.engine.inpaint import feather_mask
from studio.engine.inpaint_area import expand_to_aspect, mask_box, masked_area
from studio.engine.masked_content import fill_masked, start_latent
from studio.engine.models.toy import ToyShapesModel
from studio.engine.noise import initial_noise
from studio.engine.request import GenerationRequest, RequestError
from studio.engine.runner import Runner
from studio.engine.schedules import sampling_sigmas

PHOTO_W, PHOTO_H = 256, 192


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (PHOTO_H, PHOTO_W, 3)).astype(np.uint8)


def small_mask() -> np.ndarray:
    mask = np.zeros((PHOTO_H, PHOTO_W), np.float32)
    mask[80:100, 120:150] = 1
    return mask


def masked_request(**kw) -> GenerationRequest:
    base = dict(prompt="red circle", model="toy", steps=6, cfg_scale=3.0, seed=3, width=64, height=64,
                init_image=photo(), mask=small_mask(), mask_feather=4, inpaint_area="masked", inpaint_padding=8)
    return GenerationRequest(**{**base, **kw})


@pytest.fixture
def runner():
    return Runner(ToyShapesModel())


def counting(runner: Runner) -> list[int]:
    """Record the number of elements the network sees at each call (the run's cost)."""
    model, seen = runner.model, []
    inner = model.denoiser

    def denoiser():
        net = inner()
        return lambda x, sigma, cond: (seen.append(x.numel()), net(x, sigma, cond))[1]

    model.denoiser = denoiser
    return seen


# -- the crop ---------------------------------------------------------------------------------------------

def test_crop_box_grows_by_the_padding_and_to_the_request_aspect_inside_the_picture():
    mask = np.zeros((512, 512), bool)
    mask[100:132, 200:328] = True  # a 128x32 stroke
    assert mask_box(mask, 0) == (200, 100, 328, 132)
    assert mask_box(mask, 10) == (190, 90, 338, 142)
    assert mask_box(np.zeros((8, 8), bool), 4) is None
    # AUTOMATIC1111's example: a 128x32 region processed at 512x512 becomes 128x128.
    assert expand_to_aspect((200, 100, 328, 132), 512, 512, 512, 512) == (200, 52, 328, 180)
    # Near an edge the box shifts inside instead of shrinking; a box taller than wide grows sideways.
    assert expand_to_aspect((0, 0, 128, 32), 512, 512, 512, 512) == (0, 0, 128, 128)
    assert expand_to_aspect((490, 10, 512, 110), 512, 256, 512, 512) == (312, 10, 512, 110)
    # It never leaves the picture: a request wider than the picture's own aspect takes all of one side.
    assert expand_to_aspect((10, 10, 90, 90), 512, 128, 256, 100) == (0, 10, 256, 90)


def test_only_masked_runs_at_the_request_size_and_keeps_the_rest_of_the_photo(runner):
    req = masked_request(steps=2)
    events = []
    cost = counting(runner)
    result = runner.run(req, on_step=events.append)
    masked_cost = sum(cost)
    assert result.image.shape == (PHOTO_H, PHOTO_W, 3)
    assert events[0].latent.shape == (3, 64, 64) and result.latent.shape == (3, 64, 64)
    assert result.request is req  # the Result describes what was asked: the photo, the mask, only masked
    # Outside the feathered mask every pixel is the photo's own; inside something was painted.
    feathered = feather_mask(req.mask, req.mask_feather)
    outside = feathered <= 0
    np.testing.assert_array_equal(result.image[outside], req.init_image[outside])
    assert np.abs(result.image[req.mask == 1].astype(int) - req.init_image[req.mask == 1]).mean() > 10
    # The same inpainting over the whole picture runs the network on 12 times the pixels.
    cost.clear()
    runner.run(req.with_changes(inpaint_area="whole", width=PHOTO_W, height=PHOTO_H))
    assert sum(cost) == masked_cost * (PHOTO_W * PHOTO_H) // (64 * 64)


def test_the_crop_is_what_the_model_inpaints(runner):
    area = masked_area(masked_request())
    x1, y1, x2, y2 = area.box
    assert (x2 - x1) == (y2 - y1)  # the request's 1:1
    assert area.request.init_image.shape == (64, 64, 3) and area.request.mask.shape == (64, 64)
    assert area.request.inpaint_area == "whole"
    assert area.request.mask_feather == pytest.approx(4 * 64 / (x2 - x1))
    # The crop's mask covers the stroke scaled into it.
    assert area.request.mask.max() == 1 and area.request.mask[0, 0] == 0


def test_branching_an_only_masked_run_replays_it(runner):
    req = masked_request(sampler="euler_a")
    full = runner.run(req)
    branched = runner.run(req, branch_from=(full.run_id, 2))
    np.testing.assert_array_equal(full.image, branched.image)


def test_only_masked_checks_the_photo_and_the_mask(runner):
    with pytest.raises(RequestError, match="init_image: is 256x192 but the request is 64x64"):
        runner.run(masked_request(inpaint_area="whole"))
    with pytest.raises(RequestError, match="mask: must be 256x192 to match the image"):
        runner.run(masked_request(mask=np.ones((64, 64), np.float32)))
    with pytest.raises(RequestError, match="mask: is empty"):
        runner.run(masked_request(mask=np.zeros((PHOTO_H, PHOTO_W), np.float32)))
    big = np.zeros((2056, 8, 3), np.uint8)  # the toy model's limit is 2048 a side, for the photo too
    with pytest.raises(RequestError, match="init_image: is 8x2056 pixels, more than"):
        runner.run(masked_request(init_image=big, mask=np.ones((2056, 8), np.float32)))


def test_a_large_photo_costs_a_request_sized_run(runner):
    big = np.full((1536, 2048, 3), 90, np.uint8)
    mask = np.zeros((1536, 2048), np.float32)
    mask[700:760, 1000:1040] = 1
    events = []
    result = runner.run(masked_request(init_image=big, mask=mask, steps=2), on_step=events.append)
    assert result.image.shape == big.shape and events[-1].latent.shape == (3, 64, 64)
    assert np.array_equal(result.image[:600], big[:600])


# -- masked content ------------------------------------------------------------------------------------------

def test_fill_paints_the_hole_with_the_colours_around_it():
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, :48] = (250, 0, 0)
    image[:, 48:] = (0, 0, 250)
    mask = np.zeros((64, 96), np.float32)
    mask[16:48, 30:66] = 1
    filled = fill_masked(image, mask)
    np.testing.assert_array_equal(filled[mask == 0], image[mask == 0])
    assert filled[32, 31, 0] > 200 and filled[32, 31, 2] < 50  # next to red: red
    assert filled[32, 64, 2] > 200 and filled[32, 64, 0] < 50  # next to blue: blue
    assert 60 < filled[32, 47, 0] < 190 and 60 < filled[32, 47, 2] < 190  # the middle: a mix
    assert (fill_masked(image, np.ones((64, 96))) == 128).all()  # nothing known: grey


def test_latent_choices_replace_only_the_masked_latent():
    init = torch.full((1, 4, 2, 2), 3.0)
    noise = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])
    assert torch.equal(start_latent(init, mask, "original", noise), init)
    assert torch.equal(start_latent(init, mask, "fill", noise), init)
    nothing = start_latent(init, mask, "latent_nothing", noise)
    assert torch.equal(nothing[..., 0, 0], torch.zeros(1, 4)) and torch.equal(nothing[..., :, 1], init[..., :, 1])
    assert torch.allclose(nothing[..., 1, 0], torch.full((1, 4), 1.5))
    noisy = start_latent(init, mask, "latent_noise", noise)
    assert torch.equal(noisy[..., 0, 0], noise[..., 0, 0]) and torch.equal(noisy[..., :, 1], init[..., :, 1])


@pytest.mark.parametrize("content", ["original", "fill", "latent_noise", "latent_nothing"])
def test_each_masked_content_sets_the_start_of_the_run(runner, content):
    """The network's first input is start + noise * sigma_0, the start as each choice defines it."""
    size = 32
    image = np.zeros((size, size, 3), np.uint8)
    image[:, : size // 2] = (240, 20, 20)
    image[:, size // 2:] = (20, 20, 240)
    mask = np.zeros((size, size), np.float32)
    mask[8:24, 8:24] = 1
    req = GenerationRequest(prompt="red circle", steps=4, cfg_scale=1.0, seed=9, width=size, height=size,
                            init_image=image, mask=mask, strength=1.0, sampler="euler", masked_content=content)
    model = runner.model
    seen = []
    inner = model.denoiser
    model.denoiser = lambda: (lambda x, s, c, net=inner(): (seen.append(x.clone()), net(x, s, c))[1])
    runner.run(req)
    noise = initial_noise((1, 3, size, size), torch.Generator("cpu").manual_seed(req.seed))
    sigma0 = sampling_sigmas(model.schedule, req.steps, req.spacing, 0)[0]
    m = torch.from_numpy(mask)[None, None]
    init = model.encode_image(image)
    start = {"original": init,
             "fill": model.encode_image(fill_masked(image, mask)),
             "latent_noise": init * (1 - m) + noise * m,
             "latent_nothing": init * (1 - m)}[content]
    assert torch.allclose(seen[0], start + noise * sigma0, atol=1e-5)
    if content != "original":
        assert not torch.equal(seen[0], init + noise * sigma0)


def test_feathering_around_the_mask_equals_feathering_the_whole_picture():
    from studio.engine.inpaint_area import feather_around

    rng = np.random.default_rng(1)
    mask = np.zeros((120, 160), np.float32)
    mask[2:30, 100:158] = rng.random((28, 58))  # near two edges
    mask[70:90, 20:40] = 1
    for radius in (0, 3, 8.5):
        np.testing.assert_allclose(feather_around(mask, radius), feather_mask(mask, radius), atol=1e-6)
    assert not feather_around(np.zeros((8, 8)), 4).any()
