"""`initmap presets`: the named sweeps and what each shows."""


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help="list the named sweeps and what each shows")
    p.set_defaults(func=_run_presets)


def _run_presets(args) -> int:
    from research.training import spec

    names = spec.preset_names()
    pad = max(len(name) for name in names)
    for name in names:
        print(f"{name:{pad}s}  {spec.preset_summary(name)}")
    return 0
