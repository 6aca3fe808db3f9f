"""One name -> class table for config dicts (``dict(name="LCPAN", ...)``), with one error text."""
from mmdet_lite.utils.errors import UserError

__all__ = ["Registry"]


class Registry:
    """Names mapped to classes (or factories), built from ``{"name": ..., **kwargs}`` configs.

    ``what`` names the table in errors (``"neck.name"``, ``"train_transforms"``). Entries are
    added with ``register(cls)`` / ``register(cls, name=...)`` (also as a decorator) or given at
    construction as ``{name: cls}``. A class may be registered once; a name once.

    ``build(config)`` pops ``name`` from a copy of ``config`` and calls the class with the rest;
    an unknown name, or arguments the class rejects (``TypeError`` / ``ValueError``), is a
    ``UserError`` naming ``what``, the entry and the known names.
    """

    def __init__(self, what, entries=None):
        self.what = what
        self._entries = {}
        for name, obj in (entries or {}).items():
            self.register(obj, name=name)

    def register(self, obj=None, name=None):
        if obj is None:
            return lambda target: self.register(target, name=name)
        name = name or obj.__name__
        if name in self._entries:
            raise KeyError(f"{self.what}: {name!r} is registered twice")
        if obj in self._entries.values():
            raise KeyError(f"{self.what}: {obj!r} is registered under two names")
        self._entries[name] = obj
        return obj

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)

    def names(self):
        """The registered names, in registration order."""
        return list(self._entries)

    def get(self, name, owner=None):
        """The class registered as ``name``; ``UserError`` (prefixed by ``owner``) if none is."""
        if name not in self._entries:
            prefix = f"{owner}: " if owner else ""
            raise UserError(f"{prefix}{self.what} {name!r} is not known; choose from "
                            f"{', '.join(self._entries)}")
        return self._entries[name]

    def build(self, config, owner=None, **extra):
        """``config`` dict with a ``name`` (plus kwargs) -> instance; ``extra`` kwargs are added."""
        kwargs = dict(config or {})
        name = kwargs.pop("name", None)
        return self.create(name, kwargs, owner, **extra)

    def create(self, name, kwargs=None, owner=None, **extra):
        """``self.get(name)(**kwargs, **extra)``, bad arguments reported as ``UserError``."""
        cls = self.get(name, owner)
        try:
            return cls(**dict(kwargs or {}), **extra)
        except (TypeError, ValueError) as err:
            prefix = f"{owner}: " if owner else ""
            raise UserError(f"{prefix}{self.what} {name}: {err}") from None

    def __repr__(self):
        return f"Registry({self.what!r}, {self.names()})"
