"""Convolutions as matmuls: on CPU, `jaxpr.Reader` runs a plain convolution (channels last,
unit strides, no dilation or groups) as one matmul over shifted copies of its input (im2col),
as the built-in CNN computes it: XLA:CPU runs small convolutions ~10× slower inside the
training scan than outside it."""

import itertools

import jax
import jax.numpy as jnp


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                precision=None, preferred_element_type=None, **_):
    """`conv_general_dilated` as one matmul over the kernel's shifted copies of the input
    (im2col), for channels-last convolutions with unit strides and no dilation or groups;
    None for any other (it then runs as lax's)."""
    n = lhs.ndim - 2
    plain = (all(s == 1 for s in window_strides) and feature_group_count == 1
             and batch_group_count == 1 and all(d == 1 for d in (lhs_dilation or ()))
             and all(d == 1 for d in (rhs_dilation or ())))
    channels_last = jax.lax.ConvDimensionNumbers((0, n + 1, *range(1, n + 1)),
                                                 (n + 1, n, *range(n)),
                                                 (0, n + 1, *range(1, n + 1)))
    if not plain or jax.lax.conv_dimension_numbers(
            lhs.shape, rhs.shape, dimension_numbers) != channels_last:
        return None
    window = rhs.shape[:n]
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:-1], window, window_strides, padding)
    x = jnp.pad(lhs, ((0, 0), *(tuple(p) for p in padding), (0, 0)))
    out = [x.shape[1 + i] - window[i] + 1 for i in range(n)]
    patches = jnp.concatenate([
        x[(slice(None), *(slice(o, o + size) for o, size in zip(offset, out, strict=True)))]
        for offset in itertools.product(*(range(k) for k in window))], axis=-1)
    y = jnp.matmul(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision)
    return y.astype(preferred_element_type) if preferred_element_type is not None else y
