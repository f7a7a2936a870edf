"""Configuration: ``botkit.toml`` plus ``BOTKIT_<SECTION>__<KEY>`` environment overrides.

Core sections are typed and reject unknown keys, so a typo is an error rather than a silently
ignored setting. Sections that belong to an adapter or plugin (``[slack]``, ``[discord]``,
``[plugins.settings.NAME]``) are kept raw here and validated by their owner's own model through
:func:`section`, which gives the same kind of error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = "botkit.toml"
ENV_PREFIX = "BOTKIT_"


class ConfigError(Exception):
    """Configuration that cannot work; the message says where and what to change."""


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


class DatabaseSettings(_Section):
    url: str = "sqlite+aiosqlite:///botkit.db"
    auto_migrate: bool | None = None
    echo: bool = False
    delivery_retention_hours: float = Field(72.0, gt=0)  # how long a delivery id blocks a redelivery


class PersonaSettings(_Section):
    dir: Path | None = None
    default: str = "general"
    bindings: dict[str, str] = Field(default_factory=dict)
    watch: bool = True


class BotSettings(_Section):
    adapters: list[str] = Field(default_factory=lambda: ["console"])
    admin_users: list[str] = Field(default_factory=list)
    admin_roles: list[str] = Field(default_factory=lambda: ["admin"])
    max_message_chars: int = Field(8000, ge=1)
    shutdown_grace: float = Field(30.0, ge=0)


class ServerSettings(_Section):
    """botkit's own HTTP endpoint: ``/healthz`` and Prometheus ``/metrics`` for probes."""

    enabled: bool | None = None  # None: on for `botkit run`, off for `botkit chat`
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)


class PluginSettings(_Section):
    enabled: list[str] = Field(default_factory=lambda: ["math", "ask", "persona_admin", "status"])
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Settings(BaseSettings):
    """The whole configuration. Unknown top-level tables are kept for adapters and plugins."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="allow",
        frozen=True,
        case_sensitive=False,
    )

    bot: BotSettings = BotSettings()
    llm: LLMSettings = LLMSettings()
    stream: StreamSettings = StreamSettings()
    database: DatabaseSettings = DatabaseSettings()
    personas: PersonaSettings = PersonaSettings()
    plugins: PluginSettings = PluginSettings()
    server: ServerSettings = ServerSettings()

    _toml_file: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_current_toml_file)
        return (init_settings, env_settings, toml)

    def extra_section(self, name: str) -> dict[str, Any]:
        """A raw adapter/plugin table (``[slack]``), merged from the file and the environment."""
        extra = self.model_extra or {}
        value = extra.get(name, {})
        merged: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
        _merge_env(merged, f"{ENV_PREFIX}{name.upper()}__")
        return merged


def _merge_env(target: dict[str, Any], prefix: str) -> None:
    """Overlay ``PREFIX<KEY>[__<SUBKEY>...]`` variables on a raw table (env wins over the file)."""
    for env_name, raw in os.environ.items():
        if not env_name.upper().startswith(prefix):
            continue
        path = [p.lower() for p in env_name[len(prefix) :].split("__") if p]
        if not path:
            continue
        node = target
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = _parse_env_value(raw)


def _parse_env_value(raw: str) -> Any:
    """Environment values are strings; lists and tables may be given as JSON, as pydantic allows."""
    import json

    if raw.strip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


# pydantic-settings reads the file path from a class-level source; this module-level slot lets
# load_settings() choose the file per call without subclassing per path.
_current_toml_file: Path | None = None

M = TypeVar("M", bound=BaseModel)


def _format_validation_error(err: ValidationError, origin: str, prefix: str = "") -> str:
    lines = [f"invalid configuration ({origin}):"]
    for item in err.errors():
        dotted = ".".join(str(p) for p in (prefix, *item["loc"]) if p != "")
        env_name = ENV_PREFIX + "__".join(str(p).upper() for p in (prefix, *item["loc"]) if p != "")
        got = item.get("input")
        shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
        lines.append(f"  {dotted}: {item['msg']}{shown}  [file key {dotted!r} or env {env_name}]")
    return "\n".join(lines)


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


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load and validate the configuration, raising :class:`ConfigError` with a readable message."""
    global _current_toml_file
    toml = config_path(path)
    origin = str(toml) if toml else "defaults and environment"
    _current_toml_file = toml
    try:
        import tomllib

        if toml is not None:
            with open(toml, "rb") as fh:
                tomllib.load(fh)
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, origin)) from None
    except (ValueError, OSError) as err:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read configuration {origin}: {err}") from None
    finally:
        _current_toml_file = None


def section(settings: Settings, name: str, model: type[M]) -> M:
    """Validate an adapter's or plugin's own table (``[slack]``) against its typed model."""
    raw = settings.extra_section(name)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, f"section [{name}]", prefix=name)) from None
