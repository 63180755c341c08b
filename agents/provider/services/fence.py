"""Keeping a deployment's containers off the provider's own machine.

An internal Docker network has no route out, but its bridge is an interface of the host:
a container on it can still open connections to anything the host listens on (the agent's
API, a chain node, the owner's own programs). The agent names the bridge of each
deployment's network itself and drops every packet that comes in from it to the host
(``iptables -I INPUT -i BRIDGE -j DROP``; the containers' traffic among themselves stays on
the bridge, and the agent reaches the published port from inside the main container's
network namespace, ``netns.py``). Needs root and iptables, as the agent's Docker work does.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess

from agents.errors import AgentError

logger = logging.getLogger(__name__)

BRIDGE_OPTION = "com.docker.network.bridge.name"
_TIMEOUT_S = 30


def bridge_of(network: str) -> str:
    """The host interface name of the network's bridge (15 characters, the kernel's most)."""
    return "dcs-" + hashlib.sha256(network.encode()).hexdigest()[:11]


def fence(bridge: str) -> None:
    """Drop what comes in to the host from `bridge` (once, however often it is called).

    Raises:
        AgentError: iptables is missing or refuses (the deployment must not run unfenced).
    """
    if _iptables("-C", bridge) != 0 and _iptables("-I", bridge) != 0:
        raise AgentError(f"iptables refused to fence the service network {bridge} from the host")


def unfence(bridge: str) -> None:
    """Remove the rule `fence` added; safe when there is none."""
    for _ in range(8):  # one rule, unless something added it twice
        try:
            if _iptables("-D", bridge) != 0:
                return
        except AgentError:
            return


def _iptables(action: str, bridge: str) -> int:
    exe = shutil.which("iptables")
    if exe is None:
        raise AgentError(
            "iptables is not installed: a provider needs it to keep deployments of several "
            "containers off its own machine (apt-get install iptables)"
        )
    done = subprocess.run(
        [exe, "-w", str(_TIMEOUT_S), action, "INPUT", "-i", bridge, "-j", "DROP"],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S + 5,
        check=False,
    )
    if done.returncode != 0 and action != "-C":
        logger.debug("iptables %s failed: %s", action, done.stderr.strip())
    return done.returncode
