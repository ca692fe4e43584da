"""int8 inference on CPU: SmoothQuant-style smoothing, then PyTorch's dynamic int8 quantization of linear layers.

PyTorch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``: int8 weights per output channel,
activations quantized on the fly with one scale per tensor) runs fbgemm's int8 GEMMs, about 2x as fast as fp32
ones on AVX2. One scale per activation tensor is the catch: a few hidden channels of a small LLM are 100x larger
than the rest, and quantizing it as is moves the embedded model's next-token distribution by ~1 nat (KL, measured).
SmoothQuant (Xiao et al., 2023, https://arxiv.org/abs/2211.10438) moves that range from the activations into the
weights with per-channel scales folded into the preceding operation, which leaves the float model's output
unchanged: ``norm -> q/k/v``, ``norm -> gate/up``, ``up -> down`` (the gated product is linear in ``up``), ``v ->
o`` (attention mixes rows of ``v``, so a scale per value channel passes through; shared by the query heads of a
key-value group) and ``final norm -> lm_head`` (untied from the input embeddings first). The scales come from
activation maxima on a few built-in calibration texts.

Eager dynamic quantization is deprecated in favour of torchao but ships with torch 2.13.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from culturealign.errors import UserError

log = logging.getLogger(__name__)

# Generic chat turns (no survey content) whose activations set the smoothing scales.
CALIBRATION = [
    "What do you usually cook for a family dinner on a weekend?",
    "Can you explain how a bill becomes a law, step by step?",
    "Write a short poem about the sea at night.",
    "I have an argument with my neighbour about noise. What should I do?",
    "List three ways to save money when travelling by train.",
    "Why do leaves change colour in autumn? Please answer briefly.",
    "Tell me about a festival that people celebrate with music and dancing.",
    "How should a manager give difficult feedback to an employee?",
]


def quantize_int8(model: Any, tokenizer: Any = None, alpha: float = 0.5, smooth: bool = True) -> Any:
    """``model`` (float32, eval) with its linear layers in dynamic int8, smoothed first when ``tokenizer`` is given.

    Smoothing applies to Llama-style decoder layers (``input_layernorm``, ``self_attn.{q,k,v,o}_proj``,
    ``post_attention_layernorm``, ``mlp.{gate,up,down}_proj``); other architectures are quantized unsmoothed.
    """
    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as e:
        raise UserError(f"dtype int8 needs torch.ao.quantization ({e}); use float32") from e
    if smooth and tokenizer is not None:
        if _llama_layers(model) is None:
            log.warning("int8: %s is not a Llama-style model; quantizing without smoothing", type(model).__name__)
        else:
            smooth_model(model, _activation_maxima(model, tokenizer), alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


def _llama_layers(model: Any) -> list[Any] | None:
    layers = getattr(getattr(model, "model", None), "layers", None)
    need = ("input_layernorm", "post_attention_layernorm", "self_attn", "mlp")
    if not layers or not all(hasattr(layers[0], n) for n in need):
        return None
    attn, mlp = layers[0].self_attn, layers[0].mlp
    if not all(hasattr(attn, f"{p}_proj") for p in "qkvo") or not all(
        hasattr(mlp, f"{p}_proj") for p in ("gate", "up", "down")
    ):
        return None
    return list(layers)


def _activation_maxima(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Per-input-channel max |x| of every linear layer over the calibration texts (one unpadded forward each)."""
    import torch

    maxima: dict[str, Any] = {}

    def hook(name):
        def record(_module, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)
            maxima[name] = torch.maximum(maxima[name], x) if name in maxima else x

        return record

    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    handles = [m.register_forward_pre_hook(hook(n)) for n, m in linears]
    try:
        with torch.inference_mode():
            for text in CALIBRATION:
                messages = [{"role": "user", "content": text}]
                text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                model(input_ids=torch.tensor([tokenizer(text, add_special_tokens=False).input_ids]))
    finally:
        for h in handles:
            h.remove()
    return maxima


def _scales(act_max: Any, weights: list[Any], alpha: float) -> Any:
    """SmoothQuant's s_j = max|X_j|^alpha / max|W_.j|^(1-alpha), over the input channels j of ``weights``."""
    import torch

    w_max = torch.stack([w.abs().amax(0) for w in weights]).amax(0)
    s = act_max.clamp(min=1e-5).pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)
    return s.clamp(min=1e-5)


def smooth_model(model: Any, maxima: dict[str, Any], alpha: float = 0.5) -> None:
    """Fold SmoothQuant scales into the model in place; its float output stays the same (up to rounding)."""
    import torch

    names = {m: n for n, m in model.named_modules()}
    with torch.no_grad():
        for layer in _llama_layers(model):
            attn, mlp = layer.self_attn, layer.mlp
            qkv = [attn.q_proj, attn.k_proj, attn.v_proj]
            _fold_norm(layer.input_layernorm, qkv, maxima[names[attn.q_proj]], alpha)
            _fold_norm(layer.post_attention_layernorm, [mlp.gate_proj, mlp.up_proj], maxima[names[mlp.up_proj]], alpha)
            s = _scales(maxima[names[mlp.down_proj]], [mlp.down_proj.weight], alpha)
            mlp.up_proj.weight.div_(s[:, None])
            mlp.down_proj.weight.mul_(s)
            _fold_values(attn, maxima[names[attn.o_proj]], alpha)
        lm_head, norm = model.get_output_embeddings(), getattr(model.model, "norm", None)
        if lm_head is not None and norm is not None and names.get(lm_head) in maxima:
            if lm_head.weight is model.get_input_embeddings().weight:  # tied: give the head its own copy
                lm_head.weight = torch.nn.Parameter(lm_head.weight.detach().clone())
                model.config.tie_word_embeddings = False
            _fold_norm(norm, [lm_head], maxima[names[lm_head]], alpha)


def _fold_norm(norm: Any, linears: list[Any], act_max: Any, alpha: float) -> None:
    s = _scales(act_max, [lin.weight for lin in linears], alpha)
    norm.weight.div_(s)
    for lin in linears:
        lin.weight.mul_(s)


def _fold_values(attn: Any, act_max: Any, alpha: float) -> None:
    """Scale v_proj's output channels by 1/s and o_proj's input channels by s (s shared within a key-value group)."""
    o, v = attn.o_proj, attn.v_proj
    head_dim = v.weight.shape[0] // max(1, getattr(attn.config, "num_key_value_heads", 1))
    kv_heads = v.weight.shape[0] // head_dim
    groups = o.weight.shape[1] // v.weight.shape[0]
    # o_proj input channel (head h, dim d) reads v channel (h // groups, d)
    s = _scales(act_max, [o.weight], alpha).reshape(kv_heads, groups, head_dim).amax(1)  # (kv_heads, head_dim)
    v.weight.div_(s.reshape(-1)[:, None])
    if v.bias is not None:
        v.bias.div_(s.reshape(-1))
    o.weight.mul_(s[:, None, :].expand(kv_heads, groups, head_dim).reshape(-1))
