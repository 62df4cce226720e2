"""The SDXL refiner in the parameters text, as AUTOMATIC1111 writes it: read back into refiner / refiner_switch."""

from studio.engine.request import GenerationRequest
from studio.io.parameters import parse_parameters

A1111 = ("a castle\nNegative prompt: fog\nSteps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
         "Seed: 5, Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, "
         "Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.8, Version: v1.10.1")


def test_a1111s_refiner_and_switch_are_read_without_the_hash():
    parsed = parse_parameters(A1111)
    assert parsed.request.refiner == "sd_xl_refiner_1.0" and parsed.request.refiner_switch == 0.8
    assert {"refiner", "refiner_switch"} <= parsed.given
    assert "Refiner" not in parsed.unknown and "Refiner switch at" not in parsed.unknown


def test_a_settings_line_without_a_refiner_turns_it_off():
    base = GenerationRequest(refiner="sd_xl_refiner_1.0", refiner_switch=0.7)
    parsed = parse_parameters(A1111.split(", Refiner:")[0], base)
    assert parsed.request.refiner == "" and parsed.request.refiner_switch == 0.7


def test_a_switch_out_of_range_is_brought_in_with_a_notice():
    parsed = parse_parameters(A1111.replace("Refiner switch at: 0.8", "Refiner switch at: 1.5"))
    assert parsed.request.refiner_switch == 0.99
    assert any("Refiner switch at 1.5" in n for n in parsed.notices)
