"""A name -> builder registry, one instance per kind (models, algorithms, ...).

Each entry declares the config options it reads, so a caller can hand it a whole config
section and the entry sees only its own keys. An option is declared where its entry is
registered, as a ``Field`` (type, default, range, help): the config schema's section of the
registry is built from them (``fields``), so a new model or reader with a new option is
its one file. Several entries share an option by passing the same Field object.
"""
import difflib
import importlib
import pkgutil


def closest(name, candidates, cutoff=0.0):
    """The candidate closest to ``name`` (difflib's ratio at least ``cutoff``), or None."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=cutoff)
    return match[0] if match else None


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}
        self._fields = {}
        self._traits = {}

    def register(self, name, options=(), **traits):
        """Decorator: register ``fn`` under ``name``. ``options``: the config keys it takes,
        as {key: Field} (declared here) or key names (declared in the config schema or by
        another entry); ``traits`` are facts about the entry that callers may ask (``trait``)."""
        def deco(fn):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = (fn, tuple(options))
            self._fields[name] = dict(options) if isinstance(options, dict) else {}
            self._traits[name] = dict(traits)
            return fn
        return deco

    def fields(self):
        """{key: Field} of every option declared by an entry (one Field per key)."""
        out = {}
        for name, declared in self._fields.items():
            for key, field in declared.items():
                if out.setdefault(key, field) is not field:
                    raise ValueError(f"{self.kind} option {key!r} is declared twice (by "
                                     f"{name} and another entry): share one Field")
        return out

    def trait(self, name, key, default=None):
        """A trait the entry was registered with (``register(..., key=value)``)."""
        self.check(name)
        return self._traits[name].get(key, default)

    def names(self):
        return sorted(self._entries)

    def check(self, name):
        if name not in self._entries:
            hint = closest(name, self._entries)
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"
                             + (f" (did you mean {hint!r}?)" if hint else ""))

    def get(self, name):
        self.check(name)
        return self._entries[name][0]

    def options(self, name):
        self.check(name)
        return self._entries[name][1]

    def select_options(self, name, section):
        """The entries of a config section (a mapping) that ``name`` declares."""
        return {key: section[key] for key in self.options(name) if key in section}


def import_all(package, skip=("registry",)):
    """Import every module of ``package`` (a package's ``__name__`` and ``__path__``) but
    ``skip``, so that each registers its entries: adding one is adding its file."""
    name, path = package
    for module in pkgutil.iter_modules(path):  # sorted by name
        if module.name not in skip:
            importlib.import_module(f"{name}.{module.name}")
