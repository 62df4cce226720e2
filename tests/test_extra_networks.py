"""<lora:...> tags are taken out of the prompt the way AUTOMATIC1111 reads them."""

import pytest

from studio.engine.extra_networks import LoraTag, extract_loras
from studio.engine.request import RequestError


def test_tags_are_removed_and_weights_read():
    text, tags = extract_loras("a cat <lora:Foo:0.5>, [dog:<lyco:bar>:0.5] <lora:baz:0.7:0.2>")
    assert text == "a cat , [dog::0.5]"
    assert tags == (LoraTag("Foo", 0.5, 0.5), LoraTag("bar", 1.0, 1.0), LoraTag("baz", 0.7, 0.2))


def test_same_name_twice_adds_up_case_insensitively():
    assert extract_loras("<lora:Foo:0.5> x <LORA:foo:0.25>")[1] == (LoraTag("Foo", 0.75, 0.75),)


def test_prompt_without_tags_is_unchanged():
    assert extract_loras("(red:1.2) heart, [a|b]") == ("(red:1.2) heart, [a|b]", ())


@pytest.mark.parametrize("prompt", ["<lora::1>", "<lora:x:heavy>", "<lora:x:1e999>", "<lora:x:1:2:3>",
                                    "<hypernet:h:1>", "<lora:x:nan>"])
def test_bad_tags_say_what_to_write(prompt):
    with pytest.raises(RequestError) as err:
        extract_loras(prompt)
    assert err.value.field == "prompt"
