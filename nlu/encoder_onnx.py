"""The sentence encoder's transformer as an ONNX graph, built from its safetensors weights.

nlu/sentence_encoder.py runs the encoder in numpy, which is exact but slow for all-mpnet-base-v2 (12 layers, 768
wide: 70-110 ms a caller's turn on two cores, over what a parse may take). This writes the same computation as an
ONNX graph (our own builder: no torch, no exporter), which ONNX Runtime runs in float32 about five times faster with
the same results (to 1e-6; tests/test_sentence_encoder.py). The graph takes word-piece ids (batch x tokens, all of
one length: no padding, so no mask) and gives the last hidden states (batch x tokens x width); the tokenizer, the
pooling and the normalisation stay in nlu/sentence_encoder.py. ONNX Runtime's dynamic int8 quantisation of it was
tried and not kept: 8 ms a turn, but sentence vectors only 0.71-0.81 cosine from the float ones.

Built by `helpline models` in the product's venv (the `onnx` package); run by ONNX Runtime in either venv.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from nlu.sentence_encoder import MAX_TOKENS, EncoderConfig, attention_names, load_weights, relative_buckets

OPSET = 17  # LayerNormalization
MAX_POSITIONS = MAX_TOKENS  # the relative-position buckets are tabled up to the longest sequence encoded


def build_graph(model_dir: Path) -> Any:
    """The encoder of ``model_dir`` (config.json, model.safetensors: BERT or MPNet) as an onnx ModelProto."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = EncoderConfig.read(model_dir)
    dim, heads, layers, eps, mpnet = config.dim, config.heads, config.layers, config.eps, config.mpnet
    w = load_weights(model_dir)

    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, name: str, out: str) -> str:
        product = node("MatMul", [x, const(f"{name}.wt", w[f"{name}.weight"].T)], f"{out}.mm")
        return node("Add", [product, const(f"{name}.bias", w[f"{name}.bias"])], out)

    def layer_norm(x: str, name: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [x, const(f"{name}.weight", w[f"{name}.weight"]), const(f"{name}.bias", w[f"{name}.bias"])],
            out,
            axis=-1,
            epsilon=eps,
        )

    # n, the sequence length (as a 1-D tensor of one), and the position embeddings of 0..n-1 (MPNet: from the
    # padding index + 1), sliced: ONNX Runtime's optimiser turns a Gather over a Range into a Slice it then rejects
    node("Shape", ["input_ids"], "ids_shape")
    node(
        "Slice",
        ["ids_shape", const("at1", np.array([1], dtype=np.int64)), const("to2", np.array([2], dtype=np.int64))],
        "n",
    )
    start = config.padding_idx + 1 if mpnet else 0
    node("Add", ["n", const("position_start", np.array([start], dtype=np.int64))], "position_end")
    node("Gather", [const("embeddings.word", w["embeddings.word_embeddings.weight"]), "input_ids"], "words", axis=0)
    positions = const("embeddings.position", w["embeddings.position_embeddings.weight"])
    node("Slice", [positions, "position_start", "position_end", const("axis0", np.array([0], dtype=np.int64))], "pos")
    node("Add", ["words", "pos"], "embedded")
    if not mpnet:
        node("Add", ["embedded", const("embeddings.type0", w["embeddings.token_type_embeddings.weight"][0])], "typed")
    x = layer_norm("embedded" if mpnet else "typed", "embeddings.LayerNorm", "x0")
    head_dim = dim // heads
    split = const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = const("merge_heads", np.array([0, 0, dim], dtype=np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    if mpnet:  # the relative-position bias, heads x n x n, the same in every layer
        table = relative_buckets(MAX_POSITIONS, config.buckets)
        node("Concat", ["n", "n"], "n_n", axis=0)
        both = const("axes01", np.array([0, 1], dtype=np.int64))
        node(
            "Slice",
            [const("buckets", table), const("zeros2", np.array([0, 0], dtype=np.int64)), "n_n", both],
            "bucket_nn",
        )
        node("Gather", [const("relative_bias", w["encoder.relative_attention_bias.weight"]), "bucket_nn"], "bias_nnh")
        node("Transpose", ["bias_nnh"], "position_bias", perm=[2, 0, 1])
    query, key, value, out, norm = attention_names(mpnet)
    half, root2 = (
        const("half", np.array(0.5, dtype=np.float32)),
        const("root2", np.array(math.sqrt(2), dtype=np.float32)),
    )
    unit = const("unit", np.array(1.0, dtype=np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (
            node("Reshape", [linear(x, f"{p}.{name}", f"{p}.{tag}"), split], f"{p}.{tag}.heads")
            for name, tag in ((query, "q"), (key, "k"), (value, "v"))
        )
        node("Transpose", [q], f"{p}.qt", perm=[0, 2, 1, 3])
        node("Transpose", [k], f"{p}.kt", perm=[0, 2, 3, 1])
        node("Transpose", [v], f"{p}.vt", perm=[0, 2, 1, 3])
        node("MatMul", [f"{p}.qt", f"{p}.kt"], f"{p}.qk")
        scores = node("Mul", [f"{p}.qk", scale], f"{p}.scores")
        if mpnet:
            scores = node("Add", [scores, "position_bias"], f"{p}.biased")
        node("Softmax", [scores], f"{p}.attention", axis=-1)
        node("MatMul", [f"{p}.attention", f"{p}.vt"], f"{p}.context_heads")
        node("Transpose", [f"{p}.context_heads"], f"{p}.context_t", perm=[0, 2, 1, 3])
        node("Reshape", [f"{p}.context_t", merge], f"{p}.context")
        linear(f"{p}.context", f"{p}.{out}", f"{p}.attended")
        node("Add", [x, f"{p}.attended"], f"{p}.residual1")
        x = layer_norm(f"{p}.residual1", f"{p}.{norm}", f"{p}.x1")
        hidden = linear(x, f"{p}.intermediate.dense", f"{p}.hidden")  # exact GELU: x * (1 + erf(x / sqrt 2)) / 2
        node("Div", [hidden, root2], f"{p}.scaled")
        node("Erf", [f"{p}.scaled"], f"{p}.erf")
        node("Add", [f"{p}.erf", unit], f"{p}.erf1")
        node("Mul", [hidden, f"{p}.erf1"], f"{p}.gelu2")
        node("Mul", [f"{p}.gelu2", half], f"{p}.gelu")
        linear(f"{p}.gelu", f"{p}.output.dense", f"{p}.ffn")
        node("Add", [x, f"{p}.ffn"], f"{p}.residual2")
        x = layer_norm(f"{p}.residual2", f"{p}.output.LayerNorm", f"{p}.x2")
    node("Identity", [x], "hidden_states")
    graph = helper.make_graph(
        nodes,
        "sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", "tokens", dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="helpline")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    return model


def write_graph(model_dir: Path, target: Path) -> Path:
    """The encoder of ``model_dir`` as an ONNX file at ``target`` (written whole, then moved into place)."""
    import onnx

    partial = target.with_name(target.name + ".partial")
    try:
        onnx.save_model(build_graph(model_dir), str(partial))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
