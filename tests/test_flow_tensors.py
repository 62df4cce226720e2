"""Reading flow-model weights: fp8 and scaled fp8 safetensors, GGUF (quantised, as ComfyUI-GGUF and llama.cpp write
them), pickles (weights only), folders of shards; headers alone for detection; what the model card says."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow.precision import part_precision, stored_precision
from studio.engine.models.flow.tensors import read_key_shapes, read_state_dict, read_storage
from studio.engine.models.flow.testing_files import save_fp8, save_gguf

gguf = pytest.importorskip("gguf")
Q = gguf.GGMLQuantizationType


def weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "double_blocks.0.img_attn.qkv.weight": torch.randn(96, 64, generator=g),
        "double_blocks.0.img_attn.qkv.bias": torch.randn(96, generator=g),
        "final_layer.linear.weight": torch.randn(64, 256, generator=g) * 0.02,
        "img_in.weight": torch.randn(64, 40, generator=g),  # rows not a whole number of 32-blocks: stays F16
    }


def close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    return bool((a.float() - b.float()).abs().max() <= rel * b.float().abs().max())


# --- safetensors: fp8 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fp8", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_fp8_matrices_come_back_upcast_within_fp8_precision(tmp_path, fp8):
    state = weights()
    path = save_fp8(state, tmp_path / "flux_fp8.safetensors", fp8=fp8)
    got = read_state_dict(path, dtype=torch.bfloat16)
    assert set(got) == set(state)
    assert all(t.dtype == torch.bfloat16 for t in got.values())
    for key, want in state.items():
        if want.ndim >= 2:
            # fp8 -> bf16 is exact: the value is the stored fp8 number itself
            assert torch.equal(got[key], want.to(fp8).to(torch.bfloat16))
            assert close(got[key], want, 0.07 if fp8 == torch.float8_e4m3fn else 0.13)
        else:
            assert torch.equal(got[key], want.to(torch.bfloat16))
    assert stored_precision(path) == ("fp8 e4m3fn" if fp8 == torch.float8_e4m3fn else "fp8 e5m2")


def test_dtype_none_keeps_what_is_stored(tmp_path):
    path = save_fp8(weights(), tmp_path / "m.safetensors")
    got = read_state_dict(path)
    assert got["img_in.weight"].dtype == torch.float8_e4m3fn and got["img_in.weight"].shape == (64, 40)
    assert got["double_blocks.0.img_attn.qkv.bias"].dtype == torch.float32


def test_comfyui_scaled_fp8_is_multiplied_back_and_its_markers_dropped(tmp_path):
    state = {k: v * 300 for k, v in weights().items()}  # beyond fp8 e4m3fn's range (448) unless scaled
    path = save_fp8(state, tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors", scaled=True)
    assert "scaled_fp8" in read_key_shapes(path)
    got = read_state_dict(path, dtype=torch.float32)
    assert set(got) == set(state)
    for key, want in state.items():
        assert close(got[key], want, 0.07), key


def test_prefix_keeps_only_that_part_with_the_prefix_stripped(tmp_path):
    state = {"model.diffusion_model." + k: v for k, v in weights().items()}
    state["text_encoders.clip_l.transformer.text_model.final_layer_norm.weight"] = torch.ones(8)
    path = tmp_path / "aio.safetensors"
    save_file(state, str(path))
    got = read_state_dict(path, prefix="model.diffusion_model.", dtype=torch.float16)
    assert set(got) == set(weights()) and got["img_in.weight"].dtype == torch.float16
    clip = read_state_dict(path, prefix="text_encoders.clip_l.transformer.")
    assert list(clip) == ["text_model.final_layer_norm.weight"]


def test_a_folder_of_shards_reads_as_one_state_dict(tmp_path):
    state = weights()
    keys = sorted(state)
    save_file({k: state[k] for k in keys[:2]}, str(tmp_path / "diffusion_pytorch_model-00001-of-00002.safetensors"))
    save_file({k: state[k] for k in keys[2:]}, str(tmp_path / "diffusion_pytorch_model-00002-of-00002.safetensors"))
    got = read_state_dict(tmp_path)
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)
    assert read_key_shapes(tmp_path)["img_in.weight"] == (64, 40)


def test_truncated_safetensors_is_refused_by_name(tmp_path):
    path = save_fp8(weights(), tmp_path / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelLoadError, match="cut.safetensors is truncated"):
        read_state_dict(path)


# --- GGUF --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quant,tolerance", [("Q8_0", 0.01), ("Q5_0", 0.07), ("Q5_1", 0.07), ("Q4_0", 0.15),
                                             ("Q4_1", 0.15), ("BF16", 0.01), ("F16", 0.01)])
def test_gguf_quantised_tensors_come_back_within_the_quantisation_tolerance(tmp_path, quant, tolerance):
    state = weights()
    path = save_gguf(state, tmp_path / f"flux1-dev-{quant}.gguf", family="flux", quant=quant)
    got = read_state_dict(path, dtype=torch.bfloat16)
    assert set(got) == set(state)
    for key, want in state.items():
        assert got[key].dtype == torch.bfloat16 and got[key].shape == want.shape, key
        assert close(got[key], want, tolerance), key
    assert read_key_shapes(path) == {k: tuple(v.shape) for k, v in state.items()}
    storage = read_storage(path)
    assert storage["double_blocks.0.img_attn.qkv.bias"][0] == "GGUF F32"  # vectors stay F32, as ComfyUI-GGUF does
    assert storage["img_in.weight"][0] == ("GGUF F16" if quant not in ("BF16", "F16") else f"GGUF {quant}")
    assert stored_precision(path).startswith(f"GGUF {quant}")


def k_quant_file(tmp_path, kind, shape):
    """A GGUF file holding random K-quant blocks (the gguf package has no K-quantiser) with sane fp16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[kind]
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(shape[0], shape[1] // block * size), dtype=np.uint8)
    blocks = raw.reshape(-1, size)
    scale = np.array([0.01], np.float16).view(np.uint8)
    # every K-quant keeps its fp16 super-block scale d at the end (Q6_K, Q3_K) or d, dmin at the start (Q2/4/5_K)
    if kind in (Q.Q6_K, Q.Q3_K):
        blocks[:, -2:] = scale
    elif kind == Q.Q2_K:
        blocks[:, -4:-2] = scale
        blocks[:, -2:] = scale
    else:
        blocks[:, 0:2] = scale
        blocks[:, 2:4] = scale
    writer = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "flux")
    writer.add_tensor("double_blocks.0.img_mlp.0.weight", raw, raw_dtype=kind)
    writer.add_array("comfy.gguf.orig_shape.double_blocks.0.img_mlp.0.weight", [shape[0] // 2, 2, shape[1]])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tmp_path / "k.gguf", gguf.quants.dequantize(raw, kind)


@pytest.mark.parametrize("kind", [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K])
def test_gguf_k_quants_dequantise_in_their_original_shape(tmp_path, kind):
    path, want = k_quant_file(tmp_path, kind, (4, 512))
    assert np.isfinite(want).all()
    got = read_state_dict(path, dtype=torch.float32)["double_blocks.0.img_mlp.0.weight"]
    assert got.shape == (2, 2, 512)  # ComfyUI-GGUF's orig_shape field wins over the stored 2-D shape
    assert torch.equal(got.reshape(4, 512), torch.from_numpy(want))
    assert read_key_shapes(path) == {"double_blocks.0.img_mlp.0.weight": (2, 2, 512)}
    assert stored_precision(path) == f"GGUF {kind.name}"


def test_gguf_prefix_and_llama_cpp_t5_names(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "t5-v1_1-xxl-encoder-Q8_0.gguf"), "t5encoder")
    names = {"token_embd.weight": (32, 16), "enc.blk.0.attn_q.weight": (16, 16), "enc.blk.0.attn_rel_b.weight": (32, 2),
             "enc.blk.0.ffn_gate.weight": (32, 16), "enc.blk.0.ffn_norm.weight": (16,),
             "enc.output_norm.weight": (16,)}
    for name, shape in names.items():
        writer.add_tensor(name, np.ones(shape, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shapes = read_key_shapes(tmp_path / "t5-v1_1-xxl-encoder-Q8_0.gguf")
    assert shapes == {
        "shared.weight": (32, 16), "encoder.block.0.layer.0.SelfAttention.q.weight": (16, 16),
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": (32, 2),
        "encoder.block.0.layer.1.DenseReluDense.wi_0.weight": (32, 16),
        "encoder.block.0.layer.1.layer_norm.weight": (16,), "encoder.final_layer_norm.weight": (16,)}
    got = read_state_dict(tmp_path / "t5-v1_1-xxl-encoder-Q8_0.gguf", prefix="encoder.block.0.")
    assert set(got) == {"layer.0.SelfAttention.q.weight", "layer.0.SelfAttention.relative_attention_bias.weight",
                        "layer.1.DenseReluDense.wi_0.weight", "layer.1.layer_norm.weight"}


def test_gguf_qwen3_names(tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "Qwen3-4B-Q4_K_M.gguf"), "qwen3")
    for name in ("token_embd.weight", "blk.3.attn_k_norm.weight", "blk.3.attn_output.weight", "output_norm.weight"):
        writer.add_tensor(name, np.ones((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert set(read_key_shapes(tmp_path / "Qwen3-4B-Q4_K_M.gguf")) == {
        "model.embed_tokens.weight", "model.layers.3.self_attn.k_norm.weight", "model.layers.3.self_attn.o_proj.weight",
        "model.norm.weight"}


def patch_type(path, name: str, type_id: int) -> None:
    """Rewrite the GGML type of tensor ``name`` in a GGUF header (the u32 after its name and dimensions)."""
    data = bytearray(path.read_bytes())
    at = data.index(name.encode()) + len(name)
    (n_dims,) = struct.unpack_from("<I", data, at)
    struct.pack_into("<I", data, at + 4 + 8 * n_dims, type_id)
    path.write_bytes(bytes(data))


def test_gguf_type_unknown_to_the_gguf_package_is_named(tmp_path):
    path = save_gguf(weights(), tmp_path / "odd.gguf", family="flux", quant="Q8_0")
    patch_type(path, "final_layer.linear.weight", 250)
    with pytest.raises(ModelLoadError, match="odd.gguf holds tensors of GGUF type 250"):
        read_key_shapes(path)


def test_gguf_type_without_a_dequantiser_is_named(tmp_path):
    raw = np.zeros((2, 64 // 32 * gguf.GGML_QUANT_SIZES[Q.Q8_1][1]), np.uint8)
    writer = gguf.GGUFWriter(str(tmp_path / "q81.gguf"), "flux")
    writer.add_tensor("img_in.weight", raw, raw_dtype=Q.Q8_1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert read_key_shapes(tmp_path / "q81.gguf") == {"img_in.weight": (2, 64)}
    with pytest.raises(ModelLoadError, match=r"q81.gguf: tensor 'img_in.weight' is stored as GGUF Q8_1"):
        read_state_dict(tmp_path / "q81.gguf")


@pytest.mark.parametrize("damage", ["truncate", "junk", "empty"])
def test_damaged_gguf_is_a_clear_error(tmp_path, damage):
    path = save_gguf(weights(), tmp_path / "bad.gguf", family="flux")
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "junk": b"\x89PNG" + data[4:], "empty": b""}[damage])
    with pytest.raises(ModelLoadError, match="bad.gguf"):
        read_state_dict(path)


# --- pickles ---------------------------------------------------------------------------------------------------
def test_pickled_weights_load_and_a_pickle_with_code_is_refused(tmp_path):
    torch.save({"state_dict": weights()}, tmp_path / "model.ckpt")
    got = read_state_dict(tmp_path / "model.ckpt", dtype=torch.float16)
    assert got["img_in.weight"].dtype == torch.float16 and torch.equal(got["img_in.weight"],
                                                                       weights()["img_in.weight"].half())
    assert read_key_shapes(tmp_path / "model.ckpt")["final_layer.linear.weight"] == (64, 256)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.bin", "wb") as f:
        pickle.dump({"w": Payload()}, f, protocol=2)
    with pytest.raises(ModelLoadError, match=r"evil.bin was refused: .*could run arbitrary code"):
        read_state_dict(tmp_path / "evil.bin")


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="model.onnx: the studio cannot read .onnx files"):
        read_state_dict(tmp_path / "model.onnx")
    with pytest.raises(ModelLoadError, match="no weights file at"):
        read_key_shapes(tmp_path / "gone.safetensors")


def test_part_precision_line(tmp_path):
    path = save_gguf(weights(), tmp_path / "flux1-schnell-Q4_0.gguf", family="flux", quant="Q4_0")
    line = part_precision("transformer", path, torch.bfloat16).describe()
    assert line == "transformer: GGUF Q4_0 + F16 -> bf16 (flux1-schnell-Q4_0.gguf)"
