"""Architectures by name, one module each, all with the same functions:

`layout(cfg)` (name -> Weight | Bias | Const: what `init.params` draws, and each tensor's μP
role), `forward(params, x, cfg, hp) -> (out, q)` (q: the per-layer mean squared pre-activation
or residual stream), `weight_grad_norms(grads)` and
`unit_diversity(params)`; the plain nets (mlp, cnn) also `lsuv_layers(cfg)` and
`scale_layer(params, layer, c)` for LSUV. `hp` holds the member's traced scalars.
"""

from research.networks.archs import cnn, mlp, resmlp, resnet, rnn, transformer

MODELS = {"mlp": mlp, "resmlp": resmlp, "cnn": cnn, "resnet": resnet,
          "transformer": transformer, "rnn": rnn}
