"""ToonTalker's transformer layer: a DETR decoder layer as released, cross-attention first.

OpenTalker/ToonTalker `networks/transformer.py` (`TransformerDecoderLayer.forward_post`, the
path taken with `normalize_before=False`): tgt = LN1(tgt + CrossAttn(q=tgt, k=memory_d,
v=memory_s)); tgt = LN2(tgt + SelfAttn(tgt)); tgt = LN3(tgt + Linear2(ReLU(Linear1(tgt)))).
No positional encodings; every call in the released network passes the same tensor as
memory_d and memory_s. `nn.MultiheadAttention` is written out with its parameter layout
(`in_proj_weight` holding q|k|v, `out_proj`) and computed by `jax.nn.dot_product_attention`.

Layout: batch first, `[B, tokens, d_model]` (PyTorch's is `[tokens, B, d_model]`).

Initialisation as PyTorch's: in_proj Xavier-uniform over the (3d, d) matrix with zero bias,
out_proj bias zero, Linear weights and biases U(±1/sqrt(fan_in)), LayerNorm (1, 0).

Deviation: the released layer has dropout 0.1 only inside nn.MultiheadAttention (on the
attention weights, training mode only); it is not applied here (`jax.nn.dot_product_attention`
has no dropout). Inference is unaffected.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from animojax.models.blocks import initializers

LN_EPS = 1e-5


def torch_linear_init(fan_in: int):
  """PyTorch's default nn.Linear / nn.Conv2d init: U(±1/sqrt(fan_in)) for weights and biases."""
  return initializers.uniform_init(1.0 / math.sqrt(fan_in))


def torch_linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
  init = torch_linear_init(in_features)
  return nnx.Linear(in_features, out_features, kernel_init=init, bias_init=init, rngs=rngs)


class MultiheadAttention(nnx.Module):
  """`nn.MultiheadAttention` (batch first, no masks, no dropout)."""

  def __init__(self, d_model: int, num_heads: int, *, rngs: nnx.Rngs):
    if d_model % num_heads:
      raise ValueError(f'd_model {d_model} is not divisible by num_heads {num_heads}.')
    bound = math.sqrt(6.0 / (d_model + 3 * d_model))
    self.in_proj_weight = nnx.Param(initializers.uniform(
        rngs.params(), (d_model, 3 * d_model), jnp.float32, -bound, bound))
    self.in_proj_bias = nnx.Param(jnp.zeros((3 * d_model,)))
    self.out_proj = nnx.Linear(d_model, d_model, kernel_init=torch_linear_init(d_model),
                               bias_init=nnx.initializers.zeros_init(), rngs=rngs)
    self.num_heads = num_heads

  def __call__(self, query, key, value):
    d = query.shape[-1]
    w = self.in_proj_weight[...].astype(query.dtype)
    b = self.in_proj_bias[...].astype(query.dtype)
    heads = lambda x: x.reshape(x.shape[:2] + (self.num_heads, d // self.num_heads))
    q = heads(query @ w[:, :d] + b[:d])
    k = heads(key @ w[:, d:2 * d] + b[d:2 * d])
    v = heads(value @ w[:, 2 * d:] + b[2 * d:])
    out = jax.nn.dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim), as PyTorch.
    return self.out_proj(out.reshape(query.shape[:2] + (d,)))


class DecoderLayer(nnx.Module):
  """The released `TransformerDecoderLayer` (post-norm, cross-attention first, ReLU FFN)."""

  def __init__(self, d_model: int, num_heads: int, ffn_dim: int, *, rngs: nnx.Rngs):
    self.self_attn = MultiheadAttention(d_model, num_heads, rngs=rngs)
    self.multihead_attn = MultiheadAttention(d_model, num_heads, rngs=rngs)
    self.linear1 = torch_linear(d_model, ffn_dim, rngs=rngs)
    self.linear2 = torch_linear(ffn_dim, d_model, rngs=rngs)
    self.norm1 = nnx.LayerNorm(d_model, epsilon=LN_EPS, rngs=rngs)
    self.norm2 = nnx.LayerNorm(d_model, epsilon=LN_EPS, rngs=rngs)
    self.norm3 = nnx.LayerNorm(d_model, epsilon=LN_EPS, rngs=rngs)

  def __call__(self, tgt, memory):
    """tgt [B, T, d] attends to memory [B, S, d]; returns [B, T, d]."""
    tgt = self.norm1(tgt + self.multihead_attn(tgt, memory, memory))
    tgt = self.norm2(tgt + self.self_attn(tgt, tgt, tgt))
    return self.norm3(tgt + self.linear2(jax.nn.relu(self.linear1(tgt))))
