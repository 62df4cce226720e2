import pytest
import torch

from studio.engine.denoisers import DiscreteTimeDenoiser
from studio.engine.schedules import make_schedule


def _oracle(prediction, x0, eps, schedule):
    """A network that knows the answer, in each prediction type's terms."""

    def net(x_in, t, cond):
        abar = schedule.alphas_cumprod[t.round().long()].float().view(-1, 1, 1, 1)
        if prediction == "epsilon":
            return eps
        if prediction == "v_prediction":
            return abar.sqrt() * eps - (1 - abar).sqrt() * x0
        return x0

    return net


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_wrapper_recovers_x0(prediction):
    schedule = make_schedule("scaled_linear")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 4, generator=g)
    eps = torch.randn(2, 3, 4, 4, generator=g)
    t = torch.tensor([100, 700])
    sigma = schedule.sigmas[t].float()
    x = x0 + sigma.view(-1, 1, 1, 1) * eps
    denoise = DiscreteTimeDenoiser(_oracle(prediction, x0, eps, schedule), schedule, prediction)
    assert torch.allclose(denoise(x, sigma, None), x0, atol=1e-4)


def test_network_sees_vp_input_and_timestep():
    schedule = make_schedule("linear")
    seen = {}

    def net(x_in, t, cond):
        seen["x"], seen["t"] = x_in, t
        return torch.zeros_like(x_in)

    sigma = schedule.sigmas[[500]].float()
    DiscreteTimeDenoiser(net, schedule)(torch.ones(1, 1, 2, 2), sigma, None)
    assert seen["t"].item() == pytest.approx(500, abs=1e-3)
    assert torch.allclose(seen["x"], torch.full((1, 1, 2, 2), float(schedule.alphas_cumprod[500].sqrt())), atol=1e-5)


def test_unknown_prediction():
    with pytest.raises(ValueError, match="prediction"):
        DiscreteTimeDenoiser(lambda x, t, c: x, make_schedule("cosine"), "score")
