"""The settings model every side builds on: a frozen dataclass per side, each field a CROSSRANK_<FIELD>
variable and a flag, with one default and one help text.

A command reads its settings once, when it starts (`Settings.options` builds its click options from
the fields and hands the command one validated object), and passes that object down. Importing a
module reads no environment.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

S = TypeVar("S", bound="Settings")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def setting(default: Any, help: str, *, secret: bool = False, flag: str | None = None,
            choices: tuple[str, ...] | None = None, off_flag: str | None = None) -> Any:
    """A field: its default, the one-line help its flag and the README show, and how its flag looks.

    `flag` names the flag when it differs from --field-name; `off_flag` gives a bool its negative form.
    """
    return field(default=default, metadata={"help": help, "secret": secret, "flag": flag, "choices": choices,
                                            "off_flag": off_flag})


class SettingsError(ValueError):
    """A setting has a value that cannot work; the message names the variable."""


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def variable(f: dataclasses.Field) -> str:
    return f"CROSSRANK_{f.name.upper()}"


def flag_name(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or f"--{f.name.replace('_', '-')}"


def _parse(f: dataclasses.Field, raw: str) -> Any:
    kind = type(f.default)
    if kind is bool:
        if raw.strip().lower() not in _TRUE | _FALSE:
            raise SettingsError(f"{variable(f)}={raw!r} is not a yes/no value (1, 0, true, false)")
        return raw.strip().lower() in _TRUE
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{variable(f)}={raw!r} is not a valid {kind.__name__}") from None


@dataclass(frozen=True)
class Settings:
    """Defaults, then CROSSRANK_* variables, then flags; `validate()` says what is wrong, in one line."""

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
        """`overrides` (flags) win over `environ` (default: os.environ); None means "not given"."""
        environ = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        # A variable a flag overrides is not read: a bad value there cannot stop the command.
        values = {f.name: _parse(f, environ[variable(f)]) for f in dataclasses.fields(cls)
                  if variable(f) in environ and f.name not in given}
        values.update(given)
        return cls(**values).validate()

    def validate(self: S) -> S:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise SettingsError(f"{variable(f)}={getattr(self, f.name)!r} is not one of {', '.join(choices)}")
        return self

    def public(self) -> dict[str, Any]:
        """The resolved values for a start-up log: secrets as ***, passwords in URLs masked."""
        return {f.name: ("***" if f.metadata.get("secret") and getattr(self, f.name) else
                         mask_url(v) if isinstance(v := getattr(self, f.name), str) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def options(cls, *names: str) -> Callable:
        """A decorator: one click option per named field, or per field when none is named (flag, variable,
        default and help from the field); the command gets `settings=` (every other field from its variable
        or default) instead."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        names = names or tuple(fields)

        def decorate(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def command(*args, **kwargs):
                given = {name: kwargs.pop(name) for name in names}
                try:
                    settings = cls.from_env(**given)
                except SettingsError as exc:
                    raise click.ClickException(str(exc)) from None
                return fn(*args, settings=settings, **kwargs)

            for name in reversed(names):
                command = click_option(fields[name])(command)
            return command

        return decorate


def settings_field(cls: type[Settings], name: str) -> dataclasses.Field:
    """The field `name` of a settings class."""
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def click_option(f: dataclasses.Field, help: str | None = None) -> Callable:
    """The click option of one settings field: a bool is a flag (with its `off_flag`, if any), a field with
    `choices` offers them. `help` replaces the field's where a command gives the value a wider meaning."""
    meta = f.metadata
    declaration = flag_name(f)
    if isinstance(f.default, bool):
        declaration = f"{declaration}/{meta['off_flag']}" if meta.get("off_flag") else declaration
        kind: Any = None
    else:
        kind = click.Choice(meta["choices"]) if meta.get("choices") else type(f.default)
    return click.option(declaration, f.name, type=kind, default=f.default, envvar=variable(f), show_envvar=True,
                        show_default=not meta.get("secret") and f.default != "", help=help or meta["help"],
                        is_flag=isinstance(f.default, bool) or None)


def override_option(cls: type[Settings], name: str, **click_kwargs: Any) -> Callable:
    """An option that overrides one setting for one call (a job's passage size, say): None when not
    given, so the setting applies; its help and the default it shows come from the field."""
    f = settings_field(cls, name)
    return click.option(flag_name(f), name, default=None, help=f"{f.metadata['help']} [default: {variable(f)} or "
                        f"{f.default}]", **click_kwargs)
