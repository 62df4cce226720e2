"""GPU memory and speed of each placement (Settings → GPU memory) on a real-shaped random Flux.1 dev.

    python benchmarks/bench_offload.py [--size 1024] [--steps 4] [--layers 19 38] [--modes none model sequential]
    python benchmarks/bench_offload.py --quick      # the same code path on the CPU, on the tiny test model

Builds Flux.1 dev's networks at their published shapes with random weights, in code, on the GPU in bf16 (the
transformer: diffusers' FluxTransformer2DModel defaults, 19 double + 38 single blocks, 11.9B parameters; T5-XXL,
CLIP-L and the 16-channel VAE at their shapes; nothing is downloaded), then runs the studio's Runner (Euler,
distilled guidance, a preview each step, the final VAE decode) once per placement: none (everything on the
GPU), model (one group at a time), sequential (the transformer's and text encoders' blocks streamed). Prints,
per placement, the GPU memory in use at rest and at the run's peak, the seconds per denoising step, and whether
the image is the same, bit for bit, as with everything on the GPU; then what "auto" would choose on common cards.
--quick: the tiny random Flux on the CPU, 64 px, 2 steps, each placement run with the CPU as its device (the
moves are real .to calls into the same memory): it checks the code path, not the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.engine.flow import FlowSchedule  # noqa: E402
from studio.engine.models.errors import ModelLoadError  # noqa: E402
from studio.engine.models.flow.flux import FLUX_DYNAMIC_SHIFT, FluxModel  # noqa: E402
from studio.engine.models.flow.flux_files import FLUX_VAE_SCALING, FLUX_VAE_SHIFT, FluxParts  # noqa: E402
from studio.engine.models.flow.offload import GIB, Placement, choose_placement, group_sizes  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

CARDS_GIB = (8, 12, 16, 24, 48, 80)  # free memory "auto" is asked about


def real_shaped_parts(device: torch.device, dtype: torch.dtype, layers: tuple[int, int]) -> FluxParts:
    """Flux.1 dev's four networks at their published shapes (``layers``: double, single blocks), random weights
    made on ``device`` in ``dtype`` (torch's default initialisation, as the classes construct themselves)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = FluxTransformer2DModel(num_layers=layers[0], num_single_layers=layers[1],
                                                 guidance_embeds=True)  # the defaults are Flux.1 dev's
            clip = CLIPTextModel(CLIPTextConfig(  # CLIP-L (openai/clip-vit-large-patch14's text tower)
                hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768, bos_token_id=49406,
                eos_token_id=49407, pad_token_id=49407))
            t5 = T5EncoderModel(T5Config(  # T5-XXL v1.1 (google/t5-v1_1-xxl's encoder)
                vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_heads=64, num_layers=24,
                feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False))
            vae = AutoencoderKL(  # black-forest-labs/FLUX.1-dev vae/config.json
                in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                layers_per_block=2, norm_num_groups=32, scaling_factor=FLUX_VAE_SCALING, shift_factor=FLUX_VAE_SHIFT,
                use_quant_conv=False, use_post_quant_conv=False, sample_size=1024)
    finally:
        torch.set_default_dtype(previous)
    for net in (transformer, clip, t5, vae):
        net.eval().requires_grad_(False)
    return FluxParts(transformer, clip, t5, vae)


def tiny_parts() -> FluxParts:
    from studio.engine.models.flow.testing_flux import build_random_flux

    random = build_random_flux("dev")
    return FluxParts(random.transformer, random.clip, random.t5, random.vae)


def flux_model(parts: FluxParts, device: torch.device, dtype: torch.dtype) -> FluxModel:
    return FluxModel(parts, name="random Flux.1 dev", variant="dev", schedule=FlowSchedule(dynamic=FLUX_DYNAMIC_SHIFT),
                     device=device, weights_dtype=dtype, vae_scaling=FLUX_VAE_SCALING, vae_shift=FLUX_VAE_SHIFT)


def run_placement(model: FluxModel, mode: str, request: GenerationRequest) -> dict:
    """One run with ``model`` placed as ``mode``: memory at rest and at peak (GPU), seconds per step, the image."""
    gpu = model.device.type == "cuda"
    if model.placement is not None:
        model.placement.close()
    model.placement = None  # the old placement lets go of its hooks before the new one moves anything
    model._encoded.clear()  # each run encodes its prompt: the text encoders' move is part of the placement
    moves = []
    model.placement = Placement(model.memory_groups(), model.device, mode, observer=lambda w, on: moves.append(w))
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    at_rest = torch.cuda.memory_allocated() if gpu else 0
    stamps: list[float] = []
    start = time.perf_counter()
    result = Runner(model).run(request, on_step=lambda event: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    steps = np.diff([start, *stamps])[1:] if len(stamps) > 1 else np.array([wall])  # the first holds the encoding
    return {"mode": mode, "rest": at_rest, "peak": torch.cuda.max_memory_allocated() if gpu else 0,
            "step": float(statistics.median(steps)), "wall": wall, "image": result.image, "moves": len(moves)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--layers", type=int, nargs=2, default=(19, 38), metavar=("DOUBLE", "SINGLE"),
                        help="transformer blocks (default Flux.1 dev's 19 double + 38 single)")
    parser.add_argument("--modes", nargs="+", default=["none", "model", "sequential"],
                        choices=["none", "model", "sequential"])
    parser.add_argument("--quick", action="store_true", help="tiny model on the CPU, 64 px, 2 steps")
    args = parser.parse_args()

    if args.quick:
        device, dtype = torch.device("cpu"), torch.float32
        parts, size, steps = tiny_parts(), 64, 2
    else:
        if not torch.cuda.is_available():
            raise SystemExit("bench_offload.py measures GPU memory: run it where CUDA is available, or use --quick")
        device, dtype = torch.device("cuda"), torch.bfloat16
        built = time.perf_counter()
        parts, size, steps = real_shaped_parts(device, dtype, tuple(args.layers)), args.size, args.steps
        print(f"built in {time.perf_counter() - built:.1f} s on {torch.cuda.get_device_name(device)}")
    model = flux_model(parts, device, dtype)
    sizes = group_sizes(model.memory_groups())
    params = sum(p.numel() for p in parts.transformer.parameters()) / 1e9  # billions
    print(f"random Flux.1 dev: transformer {params * 1000:.1f}M params; "
          + ", ".join(f"{name} {s.total / GIB:.2f} GiB (streamed {s.streamed / GIB:.2f})" for name, s in sizes.items()))
    request = GenerationRequest(prompt="a photograph of an astronaut riding a horse", width=size, height=size,
                                steps=steps, seed=1, cfg_scale=1.0, distilled_cfg=3.5, sampler="euler",
                                spacing="trailing")
    print(f"{size}x{size}, {steps} Euler steps, distilled guidance 3.5, {dtype}")
    print(f"{'placement':>10}  {'at rest':>9}  {'peak':>9}  {'s/step':>7}  {'run s':>6}  {'moves':>5}  same pixels")
    reference, all_same = None, True
    for mode in args.modes:
        got = run_placement(model, mode, request)
        reference = got["image"] if reference is None else reference
        same = bool(np.array_equal(got["image"], reference))
        all_same &= same
        mem = ("{:>7.2f} GiB  {:>5.2f} GiB".format(got["rest"] / GIB, got["peak"] / GIB) if device.type == "cuda"
               else f"{'n/a (cpu)':>9}  {'n/a':>9}")
        print(f"{mode:>10}  {mem}  {got['step']:>7.3f}  {got['wall']:>6.2f}  {got['moves']:>5}  {same}")
    print(f"same pixels in every placement: {all_same}")
    print("auto would choose, by free GPU memory:")
    for gib in CARDS_GIB:
        try:
            plan = choose_placement("auto", sizes, torch.device("cuda"), free=gib * GIB)
            print(f"  {gib:>3} GiB free: {plan.mode} ({plan.reason})")
        except ModelLoadError as exc:
            print(f"  {gib:>3} GiB free: refused ({exc})")


if __name__ == "__main__":
    main()
