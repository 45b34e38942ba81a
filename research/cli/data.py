"""`initmap data fetch NAME`: a standard image set (MNIST, Fashion-MNIST, CIFAR-10) downloaded
once into the cache, checked against its published MD5s and converted to the `.npz` layout
that `--dataset npz:PATH` reads; prints that path."""

import argparse

from research.cli.verb import Verb

DATA_EXAMPLES = """\
examples:
  initmap data fetch mnist             # 4 IDX files, 11 MB; prints ~/.cache/initmap/mnist.npz
  initmap data fetch cifar10           # the binary version, 162 MB
  initmap sweep quick --arch cnn --dataset npz:$(initmap data fetch mnist)

Archives go to the cache's downloads/ folder (INITMAP_CACHE or XDG_CACHE_HOME moves the cache).
Without network access the command names the URL and the path to put the archive at by hand;
run it again once it is there. Built in, with no download: --dataset digits (8 × 8 images).
"""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from research.training.fetch import SOURCES

    p.add_argument("action", choices=["fetch"], help="what to do (fetch)")
    p.add_argument("name", metavar="NAME", help=f"one of {', '.join(SOURCES)}")


def _run(args: argparse.Namespace) -> int:
    from research.training.fetch import fetch

    print(fetch(args.name))
    return 0


VERB = Verb(name="data", help="fetch a standard image set (mnist, fashion-mnist, cifar10)",
            description="Download once, verify the published checksums, convert to the npz "
                        "layout `--dataset npz:PATH` reads, and print its path.",
            epilog=DATA_EXAMPLES, add_arguments=_add_arguments, run=_run)
