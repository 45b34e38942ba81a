"""The `initmap` command. Each verb parses, validates, then calls into the library.

Bad input of any kind ends here as one line on stderr and exit code 2, before anything is
written. jax is imported only after the host is split into one XLA device per core.
"""

import argparse
import difflib
import importlib
import signal
import sys

from research.cli.verb import Verb
from research.common.errors import SpecError
from research.common.version import version
from research.training import timing
from research.training.devices import configure_host_devices

# Every verb, in the order `initmap --help` lists them: research/cli/NAME.py declares its VERB.
VERB_MODULES = ("sweep", "theory", "recommend", "convert", "refine", "presets", "figures",
                "coordcheck", "bench", "data")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and a did-you-mean for unknown options."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # `--sigma-w` must not silently mean --sigma-w2
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if "unrecognized arguments" in message:
            unknown = message.split(":", 1)[1].split()
            flags = [a for a in self._option_string_actions if a.startswith("--")]
            for arg in unknown:
                if arg.startswith("--"):
                    close = difflib.get_close_matches(arg.split("=")[0], flags, n=1)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    message = f"unknown field {arg}{hint} (see {self.prog} --help)"
                    break
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


# What `initmap --help` lists for each verb: the verbs' own modules are imported only for the
# verb being run (several load jax), so `initmap --help` and `--version` start in a blink.
# tests/cli/test_verbs.py checks these lines equal each VERB's help.
VERB_HELP = {
    "sweep": "train a population over a grid and map what converges",
    "theory": "mean-field theory: critical σ_w², q*, χ₁, ξ_c, order/chaos phase",
    "recommend": "the init scale for a network type and depth, why, and the evidence",
    "convert": "framework init conventions ↔ σ_w² (variance × fan-in)",
    "refine": "locate the trainable band's edges of a stored sweep by bisection",
    "presets": "list the named sweeps, or print one and its path",
    "figures": "redraw the paper figures from stored results",
    "coordcheck": "activation size against width over the first steps: is the parametrisation "
                  "width-stable?",
    "bench": "network-steps/s of the engine against baselines",
    "data": "fetch a standard image set (mnist, fashion-mnist, cifar10)",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, that verb in full and the others by name and help
    alone (their modules not imported; "": every verb so)."""
    parser = Parser(prog="initmap", description="Which initial weight scales train, measured "
                    "over populations of networks, beside mean-field theory.",
                    epilog="Run `initmap VERB --help` for examples.")
    parser.add_argument("--version", action="version", version=f"initmap {version()}")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    for name in VERB_MODULES:
        if only is None or name == only:
            _verb(name).register(sub)
        else:
            sub.add_parser(name, help=VERB_HELP[name])
    return parser


def _verb(name: str) -> Verb:
    # Imported here, not at the top: verb modules load jax (for their help texts, e.g. the
    # activation names), and jax must load only after main() has split the host into devices.
    return importlib.import_module(f"research.cli.{name}").VERB


def verbs() -> list[Verb]:
    return [_verb(name) for name in VERB_MODULES]


def _terminate(signum, frame):
    # SIGTERM (a scheduler's stop, `kill`) unwinds like Ctrl-C: the manifest says interrupted
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    configure_host_devices()
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in VERB_MODULES else "")
    args, unknown = parser.parse_known_args(argv)
    timing.mark("imports")  # the verbs are loaded, jax with them
    if unknown:  # reported by the verb's own parser, which knows the fields to suggest
        args.verb_parser.error("unrecognized arguments: " + " ".join(unknown))
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except SpecError as err:
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 2
    except BrokenPipeError:  # `initmap … | head`: the reader left; nothing to say
        sys.stderr.close()
        return 0
    except OSError as err:  # a write failure: disk full, read-only folder, …
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished populations are stored; re-run to resume\n")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
