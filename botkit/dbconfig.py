"""The configured database, opened with errors that name the key a user fixes.

The store's messages say what is wrong with a database ("invalid database URL", "cannot connect
to database at ...: Connection refused"); a user who never wrote a URL on the command line also
needs to know where it came from. Every configuration error names its file key and environment
variable (README, exit codes), so these do too.
"""

from __future__ import annotations

from botkit.config import ConfigError, DatabaseSettings, env_name
from botkit.store import ConversationStore, StoreError
from botkit.store.database import check_supported, parse_url

WHERE = f"[database] url ({env_name('database.url')})"


async def open_configured_store(database: DatabaseSettings) -> ConversationStore:
    """``[database]``'s store; a :class:`StoreError` it raises starts with the key and variable."""
    try:
        return await ConversationStore.open(database.url, migrate=database.auto_migrate, echo=database.echo)
    except StoreError as err:
        raise StoreError(f"{WHERE}: {err}") from None


def check_database_url(database: DatabaseSettings) -> None:
    """A URL that does not even parse, or names a database or driver botkit does not run on, is a
    configuration error before anything starts (not after the model server came up)."""
    try:
        check_supported(parse_url(database.url))
    except StoreError as err:
        raise ConfigError(f"{WHERE}: {err}") from None
