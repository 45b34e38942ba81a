"""A user's Flax module as a network type: `model = "FILE.py:factory"` (or "pkg.mod:factory").

In the order a module goes through them:

- `load`: the `model` string to its factory (a file imported with its own folder on
  `sys.path`, as `python FILE.py` has it), called with the sizes it accepts;
- `jaxpr`: reading the module's traced program (each parameter's consumers, the weight that
  makes the output, the pre-activations) and running it (`im2col`: convolutions as matmuls on
  CPU);
- `roles`: each tensor's role and fan-in from those consumers, with the rules;
- `pure`: `Built`, the module as one pure function of (tensors, inputs, key);
- `probe`: building and checking it from a run's fields (`build(UserModel.of(cfg))`), with a
  note for each thing it does that a sweep would otherwise pass over;
- `network`: the `Arch` record (`ARCH`) the engine trains it through.
"""

from research.networks.user.network import ARCH, built_for, mapping_text, own_init
from research.networks.user.probe import UserModel, build

__all__ = ["ARCH", "UserModel", "build", "built_for", "mapping_text", "own_init"]
