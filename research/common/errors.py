"""The one error type for bad user input; the CLI turns it into one line and exit code 2."""


class SpecError(ValueError):
    """Bad user input: names the field, the offending value and what is allowed."""

    def __init__(self, field: str, value: object = None, allowed: object = None, reason: str = ""):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.reason = reason
        parts = [f"{field}: "]
        if reason:
            parts.append(reason)
        else:
            parts.append(f"invalid value {value!r}")
        if allowed is not None:
            if isinstance(allowed, list | tuple):
                allowed = ", ".join(str(a) for a in allowed)
            parts.append(f" (allowed: {allowed})")
        super().__init__("".join(parts))
