"""Which persona an eval argument means: a name, a file, or a stored version.

- ``math``: the persona of that name in ``[personas] dir`` (the shipped ones by default);
- ``path/to/math.md`` (anything ending ``.md``, or an existing file): that file;
- ``math@3f2a9c``: the stored version of ``math`` whose hash starts so (``botkit personas
  history math`` lists them), as it was when it served, so an edit can be judged against the
  version before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from botkit.eval.runner import Subject
from botkit.personas import Persona, PersonaError, PersonaRegistry, load_persona
from botkit.store import ConversationStore


class SubjectError(ValueError):
    """The argument names no usable persona; the message says which ones there are."""


OpenStore = Callable[[], Awaitable[ConversationStore]]


async def resolve(
    spec: str, registry: PersonaRegistry, variables: Sequence[str], open_store: OpenStore
) -> Subject:
    """The :class:`Subject` ``spec`` names (see the module's docstring)."""
    local = _local(spec, registry, variables)
    if local is not None:
        return local
    name, _, ref = spec.partition("@")
    return Subject(f"{name}@{ref}", await _stored(name, ref, variables, open_store))


def _local(spec: str, registry: PersonaRegistry, variables: Sequence[str]) -> Subject | None:
    """A persona file or a name in the folder; None for ``NAME@HASH`` (a stored version)."""
    path = Path(spec)
    if "@" in spec and not path.exists():
        return None
    if spec.endswith(".md") or path.is_file():
        try:
            persona = load_persona(path, variables)
        except PersonaError as err:
            raise SubjectError(str(err)) from None
        return Subject(f"{path.name}@{persona.content_hash[:8]}", persona)
    persona_or_none = registry.get(spec)
    if persona_or_none is None:
        known = ", ".join(registry.names()) or "none"
        broken = "".join(f"; {e}" for e in registry.errors if e.path.stem == spec)
        raise SubjectError(
            f"no persona named {spec!r}{broken} (personas: {known}; or give a persona file's path, "
            "or NAME@HASH for a stored version: see `botkit personas history NAME`)"
        )
    return Subject(f"{spec}@{persona_or_none.content_hash[:8]}", persona_or_none)


async def _stored(name: str, ref: str, variables: Sequence[str], open_store: OpenStore) -> Persona:
    from botkit.audit import VersionNotFound, pick_version

    store = await open_store()
    try:
        versions = await store.persona_versions(name)
    finally:
        await store.close()
    if not versions:
        raise SubjectError(
            f"no stored versions of persona {name!r}: versions are stored when botkit loads a "
            "persona (`botkit chat`, `botkit run`, `botkit personas history NAME`)"
        )
    try:
        version = pick_version(name, versions, ref)
    except VersionNotFound as err:
        raise SubjectError(str(err)) from None
    try:
        # A stored version has no file; its errors name it as "stored@HASH/NAME.md:LINE".
        path = Path(f"stored@{version.hash}") / f"{name}.md"
        return load_persona(path, variables, raw=version.text.encode("utf-8"))
    except PersonaError as err:
        raise SubjectError(f"stored version {name}@{version.hash} does not load: {err}") from None
