"""Errors raised by the shared protocol layer.

Hierarchy::

    ProtocolError
    ├── DeploymentError            the deployments file is missing, unreadable or lacks a chain
    └── ChainError                 the chain cannot be reached or answers unexpectedly

Every message says how to fix the problem.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Root of every error raised by ``protocol``."""


class DeploymentError(ProtocolError):
    """The deployments file is missing, unreadable, or has no entry for the chain."""


class ChainError(ProtocolError):
    """The chain cannot be reached, or answers something unexpected."""
