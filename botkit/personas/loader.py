"""Read one persona file, or check a whole directory of them."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from .errors import PersonaError
from .frontmatter import parse_front_matter, split_front_matter, validate_front_matter
from .model import RECOMMENDED_TEMPERATURE
from .persona import Persona
from .template import compile_body

logger = logging.getLogger("botkit.personas")

HASH_LENGTH = 16
MAX_FILE_BYTES = 256 * 1024  # a persona is a prompt template: a few KB; this is generous


def is_persona_file(path: Path) -> bool:
    """``*.md`` files, except editor/draft files (leading ``.`` or ``_``) and a README."""
    return path.suffix == ".md" and not path.name.startswith((".", "_")) and path.name.lower() != "readme.md"


def persona_files(directory: Path) -> list[Path]:
    """The persona files in ``directory``, in a stable order."""
    return sorted(p for p in directory.iterdir() if p.is_file() and is_persona_file(p))


def read_persona_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The file's bytes, refusing one over ``max_bytes`` before reading it (a 50 MB file dropped
    in by mistake must not stall the bot while it is parsed)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise PersonaError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise PersonaError(
            path,
            None,
            f"file is larger than the limit of {max_bytes // 1024} KB for a persona",
            "a persona is a prompt template of a few KB: shorten it, or raise [personas] max_file_kb",
        )
    return raw


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:HASH_LENGTH]


def load_persona(
    path: Path,
    extra_variables: Iterable[str] = (),
    *,
    max_bytes: int = MAX_FILE_BYTES,
    raw: bytes | None = None,
) -> Persona:
    """Load and fully check one persona file; raise :class:`PersonaError` at the offending line.

    ``extra_variables``: template variables plugins supply besides the built-in ones; ``raw``:
    the file's bytes if the caller has read them already.
    """
    if raw is None:
        raw = read_persona_bytes(path, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PersonaError(path, line, "file is not valid UTF-8", "save it with UTF-8 encoding") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    split = split_front_matter(path, text)
    data, lines = parse_front_matter(path, split.front_matter)
    front = validate_front_matter(path, data, lines)
    body = compile_body(path, split.body, split.body_offset, frozenset(extra_variables))
    low, high = RECOMMENDED_TEMPERATURE
    if front.temperature is not None and not low <= front.temperature <= high:
        logger.warning(
            "%s:%d: temperature %s is outside the model's recommended %s-%s; answers may loop or ramble",
            path,
            lines.get(("temperature",), 1),
            front.temperature,
            low,
            high,
        )
    return Persona(
        name=front.name,
        description=front.description,
        temperature=front.temperature,
        top_p=front.top_p,
        max_tokens=front.max_tokens,
        reasoning_display=front.reasoning_display,
        answer_format=front.answer_format,
        access=front.access,
        path=path,
        content_hash=content_hash(raw),
        source=split.body,
        _body=body,
        _body_offset=split.body_offset,
        notices=front.notice.notices(),
        store_reasoning=front.store_reasoning,
        math=front.math or ("always" if front.answer_format == "boxed" else "never"),
    )


def check_directory(
    directory: Path, extra_variables: Iterable[str] = (), *, max_bytes: int = MAX_FILE_BYTES
) -> tuple[list[Persona], list[PersonaError]]:
    """Load every persona file in ``directory`` independently (for ``botkit personas check``).

    Unlike the registry there is no previous version to fall back on: every problem is reported.
    """
    if not directory.is_dir():
        return [], [PersonaError(directory, None, "persona directory does not exist")]
    personas: list[Persona] = []
    errors: list[PersonaError] = []
    files = persona_files(directory)
    if not files:
        errors.append(PersonaError(directory, None, "no persona files (*.md) found"))
    for path in files:
        try:
            personas.append(load_persona(path, extra_variables, max_bytes=max_bytes))
        except PersonaError as exc:
            errors.append(exc)
    return personas, errors
