"""Access rules people can write (persona files and configuration), and the platform directory
they are decided with; see :mod:`botkit.access.checker` for how rules combine."""

from botkit.access.checker import AccessChecker, AccessConfigError, AccessRefused
from botkit.access.directory import Directory, DirectoryError
from botkit.access.rules import Binding, ChannelRef, Rule, Who

__all__ = [
    "AccessChecker",
    "AccessConfigError",
    "AccessRefused",
    "Binding",
    "ChannelRef",
    "Directory",
    "DirectoryError",
    "Rule",
    "Who",
]
