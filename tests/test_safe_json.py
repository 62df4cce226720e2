"""JSON loaders refuse what would crash the studio (deep nesting, non-finite numbers) with a ValueError."""

import pytest

from studio.io.safe_json import JSONFileError, load_json_file, loads_limited


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 65 + "]" * 65, '{"a": Infinity}', "[NaN]", "[1e999]",
                                  "not json", b"\xff\xfe", "[" + "1" * 5000 + "]"])
def test_bad_json_is_a_value_error(text):
    with pytest.raises(JSONFileError):
        loads_limited(text)


def test_good_json_passes_and_file_errors_name_the_file(tmp_path):
    assert loads_limited('{"a": [1, 2.5, {"b": null}]}') == {"a": [1, 2.5, {"b": None}]}
    bad = tmp_path / "settings.json"
    bad.write_text("[" * 1000)
    with pytest.raises(ValueError, match="settings.json"):
        load_json_file(bad)
