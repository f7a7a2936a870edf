"""botkit: chat-platform bots backed by a self-hosted reasoning model.

The public surface is deliberately small: the event model (:mod:`botkit.events`), the plugin API
(:mod:`botkit.plugins.api`) and the testing kit (:mod:`botkit.testing`). Everything else is
internal machinery that may change between releases.
"""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (hatch), `botkit --version` prints it
