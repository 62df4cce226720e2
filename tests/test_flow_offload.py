"""GPU memory placement for flow models: which placement is chosen for a device's free memory and why, which
group is on the device in each phase of a run, blocks streamed without changing a single bit, and a model that
cannot fit refused at load with what to do (the real GPU run is benchmarks/bench_offload.py on a lent device).

Every test runs on the CPU: free memory is given, and Placement runs with the CPU as its device and an
observer that records each move (the moves themselves are real ``.to`` calls, to the same memory)."""

from __future__ import annotations

import pytest
import torch

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow import offload
from studio.engine.models.flow.offload import (
    GIB,
    GroupSize,
    Placement,
    blocks_of,
    choose_placement,
    group_sizes,
    module_bytes,
    needed_bytes,
)

CUDA = torch.device("cuda")  # a name is enough for choose_placement: nothing is allocated
# Flux.1 dev in bf16, roughly: a 23.8 GB transformer of 57 blocks, T5-XXL 9.5 GB of 24 blocks, a small VAE.
FLUX_DEV = {"text_encoders": GroupSize(int(9.8 * GIB), int(0.7 * GIB)),
            "transformer": GroupSize(int(22.2 * GIB), int(0.8 * GIB)), "vae": GroupSize(int(0.16 * GIB), 0)}


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


def test_auto_takes_the_fastest_placement_that_fits():
    assert choose_placement("auto", FLUX_DEV, CUDA, free=80 * GIB).mode == "none"  # an H100
    model = choose_placement("auto", FLUX_DEV, CUDA, free=30 * GIB)
    assert model.mode == "model"
    assert model.describe() == ("GPU memory: one part at a time on the GPU (model offload): the whole model does not "
                                "fit, its largest part does (26.5 GiB needed, 30.0 GiB free)")
    assert choose_placement("auto", FLUX_DEV, CUDA, free=15 * GIB).mode == "sequential"  # a 16 GB card
    assert needed_bytes("sequential", FLUX_DEV) == int(int(0.8 * GIB) * 1.15) + GIB  # the largest block + working


def test_the_free_memory_is_measured_on_the_device_when_not_given(monkeypatch):
    asked = []
    monkeypatch.setattr(offload, "free_memory_bytes", lambda device: asked.append(device) or 15 * GIB)
    assert choose_placement("auto", FLUX_DEV, CUDA).mode == "sequential"
    assert asked == [CUDA]


def test_a_mode_asked_for_is_kept_when_it_fits_and_refused_with_advice_when_not():
    plan = choose_placement("sequential", FLUX_DEV, CUDA, free=80 * GIB)
    assert plan.mode == "sequential" and plan.reason.startswith("set in Settings")
    with pytest.raises(ModelLoadError, match=r"needs 38\.0 GiB of GPU memory with everything on the GPU, but only "
                                             r"15\.0 GiB is free on cuda: choose 'the transformer's blocks streamed "
                                             r"to the GPU \(sequential offload\)' \(or Automatic\) in Settings"):
        choose_placement("none", FLUX_DEV, CUDA, free=15 * GIB)


def test_a_model_that_cannot_fit_even_streamed_says_what_it_needs_and_what_to_do():
    with pytest.raises(ModelLoadError, match=r"the model needs 1\.9 GiB of GPU memory with the transformer's blocks "
                                             r"streamed .* but only 1\.5 GiB is free on cuda: even streaming one block "
                                             r"at a time needs more: close what else uses the GPU, load a smaller "
                                             r"file \(fp8 or GGUF Q4\)"):
        choose_placement("auto", FLUX_DEV, CUDA, free=int(1.5 * GIB))
    with pytest.raises(ModelLoadError, match="unknown GPU memory setting 'all'"):
        choose_placement("all", FLUX_DEV, CUDA, free=GIB)


def test_on_the_cpu_nothing_is_placed_and_the_card_says_nothing():
    plan = choose_placement("sequential", FLUX_DEV, torch.device("cpu"), free=GIB)
    assert plan.mode == "none" and plan.describe() == ""


def test_sizes_count_each_tensor_once_and_streaming_keeps_one_block():
    net = Tiny()
    linear = (8 * 8 + 8) * 4
    assert module_bytes([net]) == (4 * 8 + 8 + 3 * (8 * 8 + 8) + 8 * 4 + 4) * 4
    assert module_bytes([net, net.blocks[0]]) == module_bytes([net])
    sizes = group_sizes({"transformer": [net], "vae": [None]})
    assert sizes["transformer"] == GroupSize(module_bytes([net]), module_bytes([net]) - 2 * linear)
    assert sizes["vae"] == GroupSize(0, 0)


def test_blocks_are_found_inside_text_encoders_too():
    from transformers import T5Config, T5EncoderModel

    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=8, d_kv=4, d_ff=8, num_heads=2, num_layers=3,
                                 is_encoder_decoder=False, use_cache=False))
    assert blocks_of(t5) == list(t5.encoder.block)  # the outermost list, not the layers inside each block


def test_model_offload_keeps_one_group_on_the_device():
    moves = []
    groups = {"text_encoders": [torch.nn.Linear(2, 2)], "transformer": [Tiny()], "vae": [torch.nn.Linear(2, 2)]}
    placement = Placement(groups, torch.device("cpu"), "model", observer=lambda what, on: moves.append((what, on)))
    assert moves == []  # everything waits in storage until used
    for group in ("text_encoders", "transformer", "transformer", "vae"):
        placement.use(group)
    assert moves == [("text_encoders", True), ("text_encoders", False), ("transformer", True),
                     ("transformer", False), ("vae", True)]
    kept = []
    everything = Placement(groups, torch.device("cpu"), "none", observer=lambda what, on: kept.append((what, on)))
    everything.use("transformer")
    assert kept == [("text_encoders", True), ("transformer", True), ("vae", True)]  # at load, then never again


def test_a_group_that_runs_out_of_memory_while_moving_is_a_load_error():
    class Huge(torch.nn.Linear):
        def to(self, *args, **kwargs):
            if args and args[0] == torch.device("cpu") and getattr(self, "refuse", True):
                self.refuse = False  # the move back to storage works
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return self

    with pytest.raises(ModelLoadError, match="the model's transformer did not fit in the free memory of cpu: choose "
                                             "a lighter setting in Settings → GPU memory"):
        Placement({"transformer": [Huge(2, 2)]}, torch.device("cpu"), "none")


def test_streamed_blocks_arrive_before_they_run_and_the_hooks_come_off():
    torch.manual_seed(0)
    net, x = Tiny(), torch.randn(2, 4)
    want = net(x)
    events = []
    for i, block in enumerate(net.blocks):
        block.register_forward_hook(lambda *_, i=i: events.append(f"ran {i}"))
    placement = Placement({"transformer": [net]}, torch.device("cpu"), "sequential",
                          observer=lambda what, on: events.append(f"{'in' if on else 'out'} {what}"))
    placement.use("transformer")
    assert torch.equal(net(x), want)
    assert events == ["in transformer", "in transformer/0", "ran 0", "out transformer/0", "in transformer/1",
                      "ran 1", "out transformer/1", "in transformer/2", "ran 2", "out transformer/2"]
    placement.close()
    assert sum(len(b._forward_pre_hooks) for b in net.blocks) == 0
