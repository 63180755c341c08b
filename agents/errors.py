"""Errors the agents raise on purpose: each message says what to do about it."""

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
