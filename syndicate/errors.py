"""Small domain exceptions; the CLI maps them to exit codes and one-line messages."""

from __future__ import annotations


class SyndicateError(Exception):
    """Base class for every error syndicate reports to a person."""

    exit_code = 1


class ConfigError(SyndicateError):
    """The config file is missing, unreadable or invalid (exit 2)."""

    exit_code = 2


class UsageError(SyndicateError):
    """The command line names something that does not exist (exit 2)."""

    exit_code = 2


class LockedError(SyndicateError):
    """Another sync or withdraw holds the state store's lock (exit 75)."""

    exit_code = 75


class NotFound(SyndicateError):
    """An entry named on the command line is not known."""

    exit_code = 2


class StoreError(SyndicateError):
    """The state store failed mid-run (a full disk, a lost file): the run stops with one line (exit 1)."""

    exit_code = 1


class StoreUnavailable(StoreError):
    """The state store's server went away or cannot be reached mid-run: the remaining work fails (exit 1)."""


class ClaimLost(SyndicateError):
    """This run no longer holds a feed or partner it was working on (its lease ran out or was taken over)."""

    exit_code = 1
