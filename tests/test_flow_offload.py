"""CPU offload for flow models: which group is on the device when, blocks streamed through hooks without changing
results, and a model that cannot fit named before it is moved (the GPU run is checked on a lent device)."""

from __future__ import annotations

import pytest
import torch

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow.offload import Placement, check_fits, module_bytes


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(4, 8)
        self.blocks = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU())
                                           for _ in range(3)])
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.out(x)


class Recording(Placement):
    def __init__(self, *args, **kwargs):
        self.moves: list[tuple[str, str]] = []
        super().__init__(*args, **kwargs)

    def _move(self, group, device):
        self.moves.append((group, device.type))


def test_model_offload_keeps_one_group_on_the_device():
    groups = {"text_encoders": [torch.nn.Linear(2, 2)], "transformer": [Tiny()], "vae": [torch.nn.Linear(2, 2)]}
    placement = Recording(groups, torch.device("cuda"), "model")  # a device name is enough: nothing really moves
    placement.use("text_encoders")
    placement.use("transformer")
    placement.use("transformer")  # already there: nothing moves
    placement.use("vae")
    assert placement.moves == [("text_encoders", "cuda"), ("text_encoders", "cpu"), ("transformer", "cuda"),
                               ("transformer", "cpu"), ("vae", "cuda")]
    kept = Recording(groups, torch.device("cuda"), "none")
    kept.use("text_encoders")
    kept.use("transformer")
    assert kept.moves == [("text_encoders", "cuda"), ("transformer", "cuda")]


def test_streamed_blocks_give_the_same_result_and_hooks_come_off():
    torch.manual_seed(0)
    net, x = Tiny(), torch.randn(2, 4)
    want = net(x)
    placement = Placement({"transformer": [net]}, torch.device("cpu"), "sequential")
    assert placement.mode == "none"  # nothing to gain on the CPU
    placement.mode = "sequential"
    placement._stream(net)
    assert sum(len(b._forward_pre_hooks) for b in net.blocks) == 3
    placement.use("transformer")
    assert torch.equal(net(x), want)
    placement.close()
    assert sum(len(b._forward_pre_hooks) + len(b._forward_hooks) for b in net.blocks) == 0


def test_a_model_that_cannot_fit_is_named_with_what_to_do():
    size = module_bytes([Tiny()])
    assert size == (4 * 8 + 8 + 3 * (8 * 8 + 8) + 8 * 4 + 4) * 4
    check_fits(size, torch.device("cuda"), "x", free=size * 2)
    with pytest.raises(ModelLoadError, match=r"flux1-dev's transformer needs 20.0 GiB on cuda but only 15.0 GiB is "
                                             r"free: close what else uses the GPU"):
        check_fits(20 * 2**30, torch.device("cuda"), "flux1-dev's transformer", free=15 * 2**30)
    check_fits(10**15, torch.device("cpu"), "anything")  # the CPU pages instead of failing
    with pytest.raises(ModelLoadError, match="unknown offload mode 'all'"):
        Placement({}, torch.device("cpu"), "all")
