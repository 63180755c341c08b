"""Errors the agents raise on purpose: each message says what to do about it.

Hierarchy::

    AgentError
    ├── UserError               bad input or set-up by the person running the command
    ├── RefusedError            a peer (marketplace, provider, contract) refused
    ├── VerificationError       a peer's data does not match what was committed
    ├── NotFoundError           the thing asked for does not exist (here)
    └── ChainUnavailableError   the chain did not answer, or a nonce race: retry later
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error an agent raises on purpose."""


class UserError(AgentError):
    """Bad input or set-up by the person running the command; the CLI prints it plainly."""


class RefusedError(AgentError):
    """A peer (marketplace, provider, chain) refused the request; the message says why."""


class VerificationError(AgentError):
    """Data from a peer does not match what was committed (hash, signature, proof)."""


class NotFoundError(AgentError):
    """The thing asked for does not exist (here)."""


class ChainUnavailableError(AgentError):
    """The chain did not answer, or refused for a passing reason (a nonce race); retrying
    later helps."""
