"""The `initmap` command. Each verb parses, validates, then calls into the library.

Bad input of any kind ends here as one line on stderr and exit code 2, before anything is
written. jax is imported only after the host is split into one XLA device per core.
"""

import argparse
import difflib
import importlib
import sys

from research.cli.verb import Verb
from research.common.errors import SpecError
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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="initmap", description="Which initial weight scales train, measured "
                    "over populations of networks, beside mean-field theory.",
                    epilog="Run `initmap VERB --help` for examples.")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    for verb in verbs():
        verb.register(sub)
    return parser


def verbs() -> list[Verb]:
    # Imported here, not at the top: verb modules load jax (for their help texts, e.g. the
    # activation names), and jax must load only after main() has split the host into devices.
    return [importlib.import_module(f"research.cli.{name}").VERB for name in VERB_MODULES]


def main(argv: list[str] | None = None) -> int:
    configure_host_devices()
    args, unknown = build_parser().parse_known_args(argv)
    timing.mark("imports")  # the verbs are loaded, jax with them
    if unknown:  # reported by the verb's own parser, which knows the fields to suggest
        args.verb_parser.error("unrecognized arguments: " + " ".join(unknown))
    try:
        return args.func(args)
    except SpecError as err:
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 2
    except OSError as err:  # a write failure: disk full, read-only folder, …
        sys.stderr.write(f"initmap {args.verb}: error: {err}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished populations are stored; re-run to resume\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
