"""One module per built-in network type, each ending in its `Arch` record."""

# The built-in types' names, in the order help texts and tables list them: plain stacks,
# residual nets, then recurrent. Read without importing the types (which load jax);
# networks/registry.py checks its records against them.
NAMES = ("mlp", "cnn", "resmlp", "resnet", "transformer", "rnn")
