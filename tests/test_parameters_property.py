"""Any request survives format -> parse, whatever its prompt text holds."""

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.engine.request import GenerationRequest
from studio.engine.samplers import SAMPLERS
from studio.io.parameters import format_parameters, parse_parameters

# Prompts may hold commas, colons, quotes and newlines, but no line may start with
# "Negative prompt:" (the format cannot tell that apart from the negative prompt).
prompt_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r"), max_size=60)
line = prompt_text.filter(lambda s: not s.startswith("Negative prompt:") and s == s.strip())
prompts = st.lists(line, min_size=1, max_size=3).map("\n".join).filter(
    lambda p: p.strip() == p)


@settings(max_examples=150, deadline=None)
@given(
    prompt=prompts, negative=line.filter(lambda s: "\n" not in s),
    sampler=st.sampled_from(list(SAMPLERS)), spacing=st.sampled_from(["leading", "trailing", "linspace", "karras"]),
    steps=st.integers(1, 1000), cfg=st.floats(0, 30).map(lambda v: round(v, 2)),
    seed=st.integers(0, 2**63 - 1), size=st.tuples(st.integers(1, 256), st.integers(1, 256)),
    clip_skip=st.integers(1, 12),
)
def test_round_trip(prompt, negative, sampler, spacing, steps, cfg, seed, size, clip_skip):
    r = GenerationRequest(prompt=prompt, negative_prompt=negative, sampler=sampler, spacing=spacing, steps=steps,
                          cfg_scale=cfg, seed=seed, width=size[0] * 8, height=size[1] * 8, model="toy",
                          clip_skip=clip_skip)
    assert parse_parameters(format_parameters(r, "Some model")).request == r
