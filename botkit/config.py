"""Configuration: ``botkit.toml`` plus ``BOTKIT_<SECTION>__<KEY>`` environment overrides.

Core sections are typed and reject unknown keys, so a typo is an error rather than a silently
ignored setting; so is an unknown top-level section (``[databse]``). Sections that belong to an
adapter or plugin (``[slack]``, ``[discord]``, ``[plugins.settings.NAME]``) are kept raw here and
validated by their owner's model through :func:`section`, with the same kind of error message.

How the sources are put together, with no module-level state:

- :class:`Settings` reads keyword arguments, then the environment. :func:`load_settings` reads the
  file itself and makes a subclass for that one call whose :attr:`Settings.file_values` are the
  lowest-priority source, so two calls with two files never see each other's file.
- An adapter's table is validated by a pydantic-settings model with its own prefix
  (:class:`SectionSettings`, e.g. ``env_prefix="BOTKIT_SLACK__"``): the file's table is its init
  values, the environment overrides them key by key, and a variable under the prefix that names no
  key is an error, as an unknown key in the file is.
- A plugin's model is a plain pydantic model written by its author; :func:`section` wraps it in a
  one-field :class:`SectionSettings` (prefix ``BOTKIT_PLUGINS__SETTINGS__``, field the plugin's
  name), so ``BOTKIT_PLUGINS__SETTINGS__<NAME>__<KEY>`` works the same way.
- Environment values of lists and tables are JSON. One that is not (``BOTKIT_LLM__VLLM__COMMAND=vllm``)
  reaches validation as the string it is, so the error names the key, the variable and the shape.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

from botkit.access.rules import Binding, Rule
from botkit.eventloop import EventLoopChoice, uvloop_available

DEFAULT_CONFIG_FILE = "botkit.toml"
ENV_PREFIX = "BOTKIT_"


class ConfigError(Exception):
    """Configuration that cannot work; the message says where and what to change."""


def env_name(key: str) -> str:
    """The environment variable of a dotted key: ``slack.app_token`` -> ``BOTKIT_SLACK__APP_TOKEN``."""
    return ENV_PREFIX + "__".join(part.upper() for part in key.split(".") if part)


def field_error(field: str, message: str) -> PydanticCustomError:
    """The error a model validator raises about one of its fields (``raise field_error(...)``).

    A model validator's error has no location of its own; this one carries the field's name, so the
    message names the file key and the environment variable (``slack.app_token``,
    ``BOTKIT_SLACK__APP_TOKEN``) instead of the whole section.
    """
    return PydanticCustomError("botkit_field", message, {"field": field})


class _EnvSource(EnvSettingsSource):
    """The environment as pydantic-settings reads it, with two changes.

    A list or table value that is not JSON is passed on as the string it is, so that validation
    reports the key with what it got (pydantic-settings would stop at the top-level field: "error
    parsing value for field 'llm'"). With ``report_unknown``, a variable under the prefix that names
    no field is passed on too, so ``extra="forbid"`` reports it like an unknown key in the file.
    """

    def __init__(self, settings_cls: type[BaseSettings], *, report_unknown: bool = False) -> None:
        super().__init__(settings_cls)
        self.report_unknown = report_unknown

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if self.report_unknown:
            prefix = self.env_prefix.lower()
            fields = set(self.settings_cls.model_fields)
            for name, value in self.env_vars.items():
                key = name.lower()[len(prefix) :] if name.lower().startswith(prefix) else ""
                if key and key.split("__")[0] not in fields:
                    data[key] = value
        return data


class _Layered(BaseSettings):
    """pydantic-settings' source hook, narrowed to what botkit uses: the keyword arguments and the
    environment as :class:`_EnvSource` reads it (no dotenv or secrets files); a subclass orders them."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return cls.source_order(settings_cls, init_settings)

    @classmethod
    def source_order(
        cls, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The sources in priority order; each subclass says (the base has no order of its own)."""
        raise NotImplementedError(f"{cls.__name__} must define source_order")


class SectionSettings(_Layered):
    """The base of an adapter's settings model (``[slack]``); a subclass sets ``env_prefix``.

    The file's table is the init values, the environment (``BOTKIT_SLACK__<KEY>``) overrides them
    key by key, and an unknown key is an error in either. Validate a table with :func:`section`.
    """

    model_config = SettingsConfigDict(extra="forbid", env_nested_delimiter="__", case_sensitive=False)

    #: Whether a variable under the prefix that names no field is an error (off for the wrapper
    #: :func:`section` puts around a plugin's model, whose prefix is shared by every plugin).
    report_unknown_env: ClassVar[bool] = True

    @classmethod
    def source_order(
        cls, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_EnvSource(settings_cls, report_unknown=cls.report_unknown_env), init)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VLLMSettings(_Section):
    """How the supervised ``vllm serve`` is started (used when ``llm.backend`` is ``vllm``)."""

    command: list[str] = Field(default_factory=lambda: ["vllm", "serve"])
    model: str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    dtype: str = "auto"
    gpu_memory_utilization: float = Field(0.8, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    port: int = 8000
    stream_interval: int = Field(8, ge=1)
    api_server_count: int | None = None
    extra_args: list[str] = Field(default_factory=list)
    startup_timeout: float = Field(900.0, gt=0)
    log_dir: Path = Path("logs")
    health_interval: float = Field(5.0, gt=0)
    hang_checks: int = Field(3, ge=1)  # consecutive failed /health of a live server = hung
    backoff_initial: float = Field(2.0, ge=0)
    backoff_max: float = Field(60.0, ge=0)
    max_restarts: int = Field(5, ge=0)  # crashes allowed within restart_window before giving up
    restart_window: float = Field(600.0, gt=0)
    stop_timeout: float = Field(20.0, gt=0)


class LLMSettings(_Section):
    """The model backend and the default sampling the DeepSeek-R1 model card asks for."""

    backend: Literal["auto", "vllm", "standin", "external"] = "auto"
    base_url: str = "http://127.0.0.1:8000/v1"
    base_urls: list[str] = Field(default_factory=list)  # external replicas; default [base_url]
    api_key: SecretStr = SecretStr("EMPTY")
    model: str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    max_model_len: int = Field(4096, ge=256)
    max_tokens: int = Field(2048, ge=16)
    temperature: float = Field(0.6, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    connect_timeout: float = Field(10.0, gt=0)
    first_token_timeout: float = Field(120.0, gt=0)
    idle_timeout: float = Field(60.0, gt=0)
    standin_tokens_per_second: float = Field(80.0, gt=0)
    max_in_flight: int = Field(64, ge=1)  # per backend; lowered while vLLM reports queueing
    max_in_flight_per_user: int = Field(2, ge=1)
    adaptive_limits: bool = True
    queue_timeout: float = Field(300.0, gt=0)  # longest a question waits for a model slot
    max_queue: int = Field(500, ge=1)
    health_interval: float = Field(5.0, gt=0)
    retry_interrupted: bool = True  # retry once a reply cut by a crashed server, in place
    vllm: VLLMSettings = VLLMSettings()


class StreamSettings(_Section):
    """Reply streaming by edits."""

    edit_interval: float = Field(1.0, ge=0)
    thinking_update_interval: float = Field(3.0, gt=0)
    # The model's first answer text is edited in as soon as it comes when an edit token is free
    # at once, not at the next edit tick; false: every edit waits for edit_interval.
    first_text_at_once: bool = True


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///botkit.db"
    auto_migrate: bool | None = None
    echo: bool = False
    delivery_retention_hours: float = Field(72.0, gt=0)  # how long a delivery id blocks a redelivery
    # How long audit rows (refusals, admin commands, persona reloads) are kept; pruned hourly.
    audit_retention_days: float = Field(365.0, gt=0)
    # How long a turn's final write (its answer, once shown) keeps retrying while the database is
    # away before botkit gives up on it in this process (it stays in pending_writes_dir).
    write_retry_timeout: float = Field(300.0, gt=0)
    # Where a final write that waits for the database is kept, so that the next start stores it
    # even if this process is killed. None: "<file>.pending" beside a SQLite file, else
    # "botkit-pending" in the working directory.
    pending_writes_dir: Path | None = None
    # Every process on the database beats this often (seconds); one whose beat has not changed
    # for worker_timeout seconds is gone, and its unfinished turns are repaired by the others.
    heartbeat_interval: float = Field(10.0, gt=0)
    worker_timeout: float = Field(60.0, gt=0)


class PersonaSettings(_Section):
    dir: Path | None = None
    default: str = "general"
    # channel -> persona name, or -> {persona = "legal", allow = {...}, deny = {...}} (the
    # channel's access rules); a channel is an id or a #name, see botkit.access.rules.ChannelRef.
    bindings: dict[str, str | Binding] = Field(default_factory=dict)
    watch: bool = True
    # A bigger persona file is refused before it is read (a file dropped in by mistake must not
    # stall the bot); the loader's "file is larger than the limit" error tells admins this key.
    max_file_kb: int = Field(256, ge=1)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_kb * 1024

    @field_validator("bindings", mode="before")
    @classmethod
    def _binding_tables(cls, value: Any) -> Any:
        """A table is a :class:`Binding`, checked here so that a typo names its channel and key
        (not pydantic's two failed union branches)."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, binding in value.items():
            if isinstance(binding, dict):
                try:
                    binding = Binding.model_validate(binding)
                except ValidationError as err:
                    problems = "; ".join(
                        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors()
                    )
                    raise ValueError(
                        f'binding {key!r}: {problems}. Write {key!r} = "persona" or '
                        f'{key!r} = {{ persona = "name", allow_commands = false }}'
                    ) from None
            out[key] = binding
        return out


def _duration(value: str | None) -> str | None:
    """A ``[retention]`` duration as written (``30d``), checked here so a typo stops start-up."""
    if value is not None:
        from botkit.durations import parse_duration

        if not parse_duration(value):  # its ValueError says what a duration looks like
            raise ValueError(f"{value!r} is no time at all; give e.g. 30m, 12h, 7d")
    return value


Duration = Annotated[str, AfterValidator(_duration)]


class RetentionSettings(_Section):
    """How long conversations are kept (:mod:`botkit.retention`); nothing set keeps them forever.

    A turn (question, answer, reasoning) older than its retention is removed: the shorter of its
    channel's and its persona's, else ``default``. Applied at start-up and every ``interval``.
    """

    default: Duration | None = None
    personas: dict[str, Duration] = Field(default_factory=dict)
    channels: dict[str, Duration] = Field(default_factory=dict)
    interval: Duration = "1h"


class BotSettings(_Section):
    adapters: list[str] = Field(default_factory=lambda: ["console"])
    admin_users: list[str] = Field(default_factory=list)
    admin_roles: list[str] = Field(default_factory=lambda: ["admin"])
    max_message_chars: int = Field(8000, ge=1)
    shutdown_grace: float = Field(30.0, ge=0)
    # Where admins are told of a broken persona edit: "slack:#botkit-admins", "discord:1234...".
    admin_channels: list[str] = Field(default_factory=list)
    # Admins told by direct message as well: "slack:U0ADMIN", "discord:1234...".
    admin_dm_users: list[str] = Field(default_factory=list)
    # The asyncio loop botkit runs on (botkit.eventloop): uvloop where installed, by default.
    event_loop: EventLoopChoice = "auto"

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: EventLoopChoice) -> EventLoopChoice:
        if value == "uvloop" and not uvloop_available():
            raise ValueError("uvloop is not installed: pip install -e '.[speed]' (or use 'auto')")
        return value

    @field_validator("admin_channels", "admin_dm_users")
    @classmethod
    def _with_platform(cls, values: list[str]) -> list[str]:
        # An id or a name means something on one platform only: say which.
        for value in values:
            platform, sep, target = value.partition(":")
            if not sep or platform.strip().lower() not in ("slack", "discord") or not target.strip():
                raise ValueError(
                    f"{value!r} does not say its platform; write 'slack:#botkit-admins', "
                    "'slack:U0ADMIN', 'discord:#admins' or 'discord:123456789012345678'"
                )
        return values


class AccessSettings(_Section):
    """``[access]``: rules per persona, whom a refused user should ask, and how lookups behave."""

    contact: str = ""  # shown in every refusal: "#it-help or legal-ops@example.com"
    group_cache_seconds: float = Field(300.0, gt=0)  # how long a user group's members are trusted
    lookup_timeout: float = Field(5.0, gt=0)  # a membership lookup slower than this refuses
    personas: dict[str, Rule] = Field(default_factory=dict)  # [access.personas.legal] allow/deny/channels


class ServerSettings(_Section):
    """botkit's own HTTP endpoint: ``/healthz`` and Prometheus ``/metrics`` for probes."""

    enabled: bool | None = None  # None: on for `botkit run`, off for `botkit chat`
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)


class FeedbackSettings(_Section):
    """👍/👎 on the final reply of every model turn (Slack buttons, Discord buttons), stored per
    turn with its persona version; ``botkit eval report`` shows the votes."""

    enabled: bool = True


class PluginSettings(_Section):
    """The built-in plugins are on unless ``disabled``; ``enabled`` adds installed ones to them."""

    enabled: list[str] = Field(default_factory=list)
    disabled: list[str] = Field(default_factory=list)
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Settings(_Layered):
    """The whole configuration. Unknown top-level tables are kept for adapters (:meth:`table`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="allow",
        frozen=True,
        case_sensitive=False,
    )

    #: The configuration file's values, below the environment; set on the class that
    #: :func:`load_settings` makes for one call, empty on this one (keywords and environment only).
    file_values: ClassVar[Mapping[str, Any]] = {}

    bot: BotSettings = BotSettings()
    llm: LLMSettings = LLMSettings()
    stream: StreamSettings = StreamSettings()
    database: DatabaseSettings = DatabaseSettings()
    personas: PersonaSettings = PersonaSettings()
    access: AccessSettings = AccessSettings()
    plugins: PluginSettings = PluginSettings()
    server: ServerSettings = ServerSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    retention: RetentionSettings = RetentionSettings()

    @classmethod
    def source_order(
        cls, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init, _EnvSource(settings_cls), InitSettingsSource(settings_cls, dict(cls.file_values)))

    def table(self, key: str) -> dict[str, Any]:
        """The raw table at a dotted key (``slack``, ``plugins.settings.NAME``); ``{}`` if absent."""
        node: Any = self
        for part in key.split("."):
            if isinstance(node, BaseModel):
                known = part in type(node).model_fields
                node = getattr(node, part) if known else (node.model_extra or {}).get(part)
            else:
                node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return {}
        if not isinstance(node, dict):
            raise ConfigError(f"[{key}] must be a table of keys, not {node!r}")
        return dict(node)


M = TypeVar("M", bound=BaseModel)


def _for_file(values: Mapping[str, Any]) -> type[Settings]:
    """A :class:`Settings` whose lowest source is one file's values: built per call, never shared."""
    return cast(
        type[Settings], type("Settings", (Settings,), {"file_values": values, "__module__": __name__})
    )


# -- what an error message says ----------------------------------------------------------------

_SHAPES = {"list_type": "list", "set_type": "list", "tuple_type": "list", "dict_type": "table"}
_SHAPES |= {"model_type": "table", "model_attributes_type": "table"}


def _field_at(schema: type[BaseModel] | None, loc: Sequence[str]) -> FieldInfo | None:
    """The field a validation error's location points at, walking nested models."""
    field: FieldInfo | None = None
    for part in loc:
        if schema is None or part not in schema.model_fields:
            return None
        field = schema.model_fields[part]
        annotation = field.annotation
        schema = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return field


def _shape_hint(kind: str, field: FieldInfo | None, env: str) -> str:
    """How a list or table is written, for an error whose input was a string (usually from env)."""
    shape = _SHAPES.get(kind)
    if shape == "table":
        return f"; a table: one variable per key ({env}__<KEY>) or a JSON object"
    if shape is None:
        return ""
    default = field.get_default(call_default_factory=True) if field is not None else None
    example = json.dumps(default) if isinstance(default, list) and default else '["a", "b"]'
    return f"; a list, in the environment as JSON: {env}='{example}'"


def _format_validation_error(
    err: ValidationError, origin: str, prefix: str = "", schema: type[BaseModel] | None = None
) -> str:
    """One line per error: the dotted file key, the environment variable, what was wrong and got."""
    lines = [f"invalid configuration ({origin}):"]
    for item in err.errors():
        loc = [str(p) for p in item["loc"]]
        about = (item.get("ctx") or {}).get("field")  # a model validator's field_error()
        if about:
            loc.append(str(about))
        dotted = ".".join(p for p in (prefix, *loc) if p)
        env = env_name(dotted)
        field = _field_at(schema, loc)
        got = item.get("input")
        secret = field is not None and "Secret" in repr(field.annotation)
        hidden = isinstance(got, dict) or got is None or secret or item["type"] == "extra_forbidden"
        shown = "" if hidden else f" (got {got!r})"
        hint = _shape_hint(item["type"], field, env) if isinstance(got, str) else ""
        lines.append(f"  {dotted}: {item['msg']}{shown}  [file key {dotted!r} or env {env}{hint}]")
    return "\n".join(lines)


# -- top-level sections --------------------------------------------------------------------------

_SECTION_VARIABLE = re.compile(rf"^{ENV_PREFIX}([A-Za-z0-9_]+?)__", re.IGNORECASE)


def _configured_sections(file_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, str]:
    """Every top-level section something configures, with where: ``[slack]`` or ``env BOTKIT_...``."""
    found = {name.lower(): f"[{name}]" for name in (*file_values, *overrides)}
    for variable in os.environ:
        match = _SECTION_VARIABLE.match(variable)
        if match and match.group(1).lower() not in found:
            found[match.group(1).lower()] = f"env {variable}"
    return found


def _section_problems(configured: Mapping[str, str]) -> list[str]:
    """Unknown sections (with the nearest known one) and tables of adapters that are not installed."""
    core = set(Settings.model_fields)
    if all(name in core for name in configured):
        return []
    # Imported here: the loader imports this module, and only non-core sections need the adapters.
    from botkit.plugins.loader import adapter_install_hints

    hints = adapter_install_hints()  # adapter name -> None if installed, else how to install it
    known = core | {name for name, hint in hints.items() if hint is None}
    problems = []
    for name, where in configured.items():
        if name not in known:
            close = difflib.get_close_matches(name, sorted(core | set(hints)), n=1, cutoff=0.6)
            problems.append(
                _section_problem(name, where, hints.get(name), close[0] if close else None, known)
            )
    return problems


def _section_problem(name: str, where: str, install: str | None, close: str | None, known: set[str]) -> str:
    variable = where.removeprefix("env ") if where.startswith("env ") else None
    if install is not None:
        what = f"{where} configures [{name}], but" if variable else f"[{name}] is configured but"
        return f"{what} the {name} adapter is not installed: {install}"
    if close is None:
        return f"unknown section [{name}] (known sections: {', '.join(sorted(known))})"
    if variable is None:
        return f"unknown section [{name}]; did you mean [{close}]?"
    meant = ENV_PREFIX + close.upper() + variable[len(ENV_PREFIX) + len(name) :]
    return f"unknown section [{name}] in {where}; did you mean {meant}?"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The file to read: ``--config``, then ``BOTKIT_CONFIG``, then ``./botkit.toml`` if present."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"configuration file {str(path)!r} does not exist")
        return path
    env = os.environ.get("BOTKIT_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"BOTKIT_CONFIG names {env!r}, which does not exist")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (ValueError, OSError) as err:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read configuration {path}: {err}") from None


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load and validate the configuration, raising :class:`ConfigError` with a readable message.

    Keyword arguments win over the environment, which wins over the file (see the module's doc).
    """
    toml = config_path(path)
    origin = str(toml) if toml else "defaults and environment"
    file_values = _read_file(toml)
    problems = _section_problems(_configured_sections(file_values, overrides))
    if problems:
        raise ConfigError("\n  ".join([f"invalid configuration ({origin}):", *problems]))
    try:
        return _for_file(file_values)(**overrides)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, origin, schema=Settings)) from None
    except SettingsError as err:  # what the lenient environment source still cannot read
        raise ConfigError(f"cannot read the environment ({origin}): {err}: {err.__cause__}") from None


def _wrapped(key: str, model: type[BaseModel]) -> type[SectionSettings]:
    """A one-field :class:`SectionSettings` around a plain model: field = the table's last name,
    prefix = the rest, so ``plugins.settings.NAME`` reads ``BOTKIT_PLUGINS__SETTINGS__NAME__<KEY>``."""
    parent, _, name = key.rpartition(".")
    namespace = {
        "__annotations__": {name: model},
        name: Field(default_factory=dict),
        "model_config": SettingsConfigDict(env_prefix=env_name(parent) + "__" if parent else ENV_PREFIX),
        "report_unknown_env": False,  # the prefix is shared; unknown keys inside are still errors
        "__module__": __name__,
    }
    return cast(type[SectionSettings], type(f"{model.__name__}Section", (SectionSettings,), namespace))


def section(settings: Settings, key: str, model: type[M]) -> M:
    """Validate the table at ``key`` (``slack``, ``plugins.settings.NAME``) against its owner's model.

    The environment overrides the table key by key. A :class:`SectionSettings` model with the
    key's prefix (``BOTKIT_SLACK__``) reads it itself; any other model is wrapped (:func:`_wrapped`).
    """
    parent, _, name = key.rpartition(".")
    schema: type[BaseModel]
    if issubclass(model, SectionSettings) and model.model_config.get("env_prefix") == env_name(key) + "__":
        schema, prefix, init = model, key, settings.table(key)
    else:
        schema, prefix, init = _wrapped(key, model), parent, {name: settings.table(key)}
    try:
        value = schema(**init)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, f"[{key}]", prefix, schema)) from None
    return cast(M, value if schema is model else getattr(value, name))
