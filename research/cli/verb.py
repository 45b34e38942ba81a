"""How a verb of `initmap` is declared: each module in research/cli holds one `VERB`, and
cli/main.py builds the parser from the tuple of them."""

import argparse
from collections.abc import Callable
from dataclasses import dataclass


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help as every verb prints it: the epilog as written, a wider flag column, and a flag
    that takes several values shown as `--depth V …` (not argparse's `V [V ...]`)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def _format_args(self, action, default_metavar):
        if action.nargs == argparse.ONE_OR_MORE:
            return f"{self._metavar_formatter(action, default_metavar)(1)[0]} …"
        return super()._format_args(action, default_metavar)


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # the exit code; SpecError becomes one line, 2
    description: str | None = None
    epilog: str | None = None  # "examples:" first; printed as written

    def register(self, subparsers) -> argparse.ArgumentParser:
        """Add this verb to an argparse subparsers object; `func` and `verb_parser` are set."""
        parser = subparsers.add_parser(self.name, help=self.help, description=self.description,
                                       epilog=self.epilog,
                                       formatter_class=HelpFormatter)
        self.add_arguments(parser)
        # verb_parser: main reports unknown options through the verb's own parser.
        parser.set_defaults(func=self.run, verb_parser=parser)
        return parser
