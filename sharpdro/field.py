"""One typed, range-checked setting: the unit of the config schema and of the
algorithm hyperparameter table (no MindSpore import, so both load before it)."""
import math


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


class Field:
    """One leaf of the schema: default, type and the allowed values."""

    def __init__(self, default, type_, help="", choices=None, nullable=False,
                 low=None, high=None, low_open=False, item_type=None, stage=False, grid=None):
        self.default = default
        # an option of a method's stages (read by the application that runs them: jtt's
        # first_epochs, dfr's reference), never handed to a train-step cell
        self.stage = stage
        self.type = type_
        self.help = help
        self.choices = choices
        self.nullable = nullable or default is None
        self.low, self.high, self.low_open = low, high, low_open
        self.item_type = item_type
        # the values tune.py tries for a method whose main option this is (None: not tuned)
        self.grid = None if grid is None else tuple(self.coerce("grid", v) for v in grid)

    def coerce(self, key, value):
        """Check ``value`` against the field and return it in the field's type."""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {self.type.__name__})")
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is float and isinstance(value, str):
            try:  # YAML 1.1 reads "5e-4" as a string
                value = float(value)
            except ValueError:
                pass
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise ConfigError(f"{key}: expected {self.type.__name__}, got "
                              f"{type(value).__name__} {value!r}")
        if self.type is float and not math.isfinite(value):  # YAML reads .nan, .inf, "nan"
            raise ConfigError(f"{key}: {value!r} is not a finite number")
        if self.type is list and self.item_type is not None:
            value = [Field(0, self.item_type).coerce(f"{key}[{i}]", v) for i, v in enumerate(value)]
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{key}: {value!r} is not one of {list(self.choices)}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            op = ">" if self.low_open else ">="
            raise ConfigError(f"{key}: {value!r} must be {op} {self.low}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{key}: {value!r} must be <= {self.high}")
        return value

    def describe_range(self):
        """The valid values in words, for tables and help."""
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        if self.type is bool:
            return "true, false"
        low = "" if self.low is None else ("> " if self.low_open else ">= ") + str(self.low)
        high = "" if self.high is None else "<= " + str(self.high)
        return ", ".join(p for p in (low, high) if p) or "any"
