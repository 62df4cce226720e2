"""The shipped T5 v1.1 tokenizer loads offline and gives T5's ids."""

from studio.engine.models.flow.t5_tokenizer import load_t5_tokenizer


def test_t5_tokenizer_gives_t5_v1_1_ids():
    tokenizer = load_t5_tokenizer()
    assert len(tokenizer) == 32100  # 32,000 pieces + 100 sentinels
    assert tokenizer("Hello world").input_ids == [8774, 296, 1]
    assert tokenizer("a photo of a cat").input_ids == [3, 9, 1202, 13, 3, 9, 1712, 1]
    padded = tokenizer(["a cat"], padding="max_length", max_length=8, truncation=True).input_ids[0]
    assert padded == [3, 9, 1712, 1, 0, 0, 0, 0]  # </s> then <pad> = 0, as the Flux and SD3 pipelines pad
