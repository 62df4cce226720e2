"""SD 3.x's MMDiT weight names: Stability's <-> diffusers', and the config read off the shapes (sd3_layout.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402

from studio.engine.models.flow.sd3_layout import (  # noqa: E402
    config_from_diffusers_shapes,
    diffusers_to_original,
    original_to_diffusers,
)
from studio.engine.models.flow.testing_sd3 import transformer_config  # noqa: E402


@pytest.fixture(scope="module", params=["sd3", "mmditx"])
def transformer(request):
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(0)
    return SD3Transformer2DModel(**transformer_config(request.param))


def test_both_directions_are_exact_inverses(transformer):
    state = transformer.state_dict()
    original = diffusers_to_original(state)
    assert all(k.startswith(("joint_blocks.", "final_layer.", "x_embedder.", "t_embedder.", "y_embedder.",
                             "context_embedder.", "pos_embed")) for k in original)
    back = original_to_diffusers(original)
    assert set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_reading_stabilitys_names_agrees_with_diffusers_own_converter(transformer):
    """diffusers' single-file converter is the reference for Stability's names: same keys, same tensors."""
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

    original = {"model.diffusion_model." + k: v for k, v in diffusers_to_original(transformer.state_dict()).items()}
    reference = convert_sd3_transformer_checkpoint_to_diffusers(dict(original))
    ours = original_to_diffusers({k.removeprefix("model.diffusion_model."): v for k, v in original.items()})
    assert set(ours) == set(reference)
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_the_config_is_read_back_from_the_shapes(transformer):
    shapes = {k: tuple(v.shape) for k, v in transformer.state_dict().items()}
    config = config_from_diffusers_shapes(shapes)
    expected = dict(transformer.config)
    for key, value in config.items():
        if key != "sample_size":  # not in the weights; only the pipeline's default size reads it
            assert tuple(value) == tuple(expected[key]) if isinstance(value, tuple) else value == expected[key], key


def test_variants_and_their_recommended_settings():
    from types import SimpleNamespace

    from studio.engine.models.flow.sd3 import VARIANTS, variant_of

    def net(layers: int, dual: tuple = (), qk: str | None = "rms_norm"):
        return SimpleNamespace(config=SimpleNamespace(num_layers=layers, dual_attention_layers=dual, qk_norm=qk))

    assert variant_of(net(38), " sd3.5_large") == "3.5-large"
    assert variant_of(net(38), "3.5-large sd3.5_large_turbo") == "3.5-large-turbo"
    assert variant_of(net(24, dual=(0, 1)), "") == "3.5-medium"
    assert variant_of(net(24, qk=None), "sd3_medium_incl_clips") == "3-medium"
    turbo = VARIANTS["3.5-large-turbo"].recommended
    assert (turbo.steps, turbo.cfg_scale) == (4, 1.0)  # distilled: no unconditional pass
    assert VARIANTS["3.5-large"].recommended.steps == 28 and VARIANTS["3.5-medium"].recommended.steps == 40


# The transformers of the released models, as their diffusers configs publish them.
RELEASED = {
    "3-medium": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536, pos_embed_max_size=192,
                     qk_norm=None, dual_attention_layers=()),
    "3.5-large": dict(num_layers=38, num_attention_heads=38, caption_projection_dim=2432, pos_embed_max_size=192,
                      qk_norm="rms_norm", dual_attention_layers=()),
    "3.5-medium": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536, pos_embed_max_size=384,
                       qk_norm="rms_norm", dual_attention_layers=tuple(range(13))),
}


@pytest.mark.parametrize("variant", sorted(RELEASED))
def test_released_shapes_give_the_released_configs(variant):
    """Full-size models built without memory (meta tensors) through Stability's names: the config read back."""
    from diffusers import SD3Transformer2DModel

    from studio.engine.models.flow.sd3 import variant_of

    published = dict(sample_size=128, patch_size=2, in_channels=16, attention_head_dim=64, joint_attention_dim=4096,
                     pooled_projection_dim=2048, out_channels=16, **RELEASED[variant])
    with torch.device("meta"):  # weights and the position table: shapes only
        net = SD3Transformer2DModel(**published)
    original = diffusers_to_original(net.state_dict())
    shapes = {k: tuple(v.shape) for k, v in original_to_diffusers(original).items()}
    config = config_from_diffusers_shapes(shapes)
    assert {k: tuple(v) if isinstance(v, tuple) else v for k, v in config.items()} == published
    assert variant_of(net, "") == variant
