"""Embedded local infrastructure: the launcher used by ``avatarctl up`` / the run command and the tests."""

from .launcher import DevStack, StackEndpoints, free_port

__all__ = ["DevStack", "StackEndpoints", "free_port"]
