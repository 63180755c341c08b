"""The demo's own image: a renter builds a tiny image, pushes it to the storage nodes, and
a job runs in it on a provider that pulls it by digest.
"""

from __future__ import annotations

from agents.devnet.network import Network, dev_account
from agents.image.build import build_image
from agents.image.images import Images, docker_client
from protocol.images import split_pinned

DEMO_IMAGE = "demo/hello:1"
SCRIPT = b"""#!/bin/sh
# the demo renter's own program, in its own image
echo "hello from $(cat /etc/demo-owner)'s own image, pulled by digest" > /output/hello.txt
"""


def push_demo_image(net: Network, renter_key: int) -> tuple[str, str]:
    """Build and push the demo image as dev account `renter_key`; (tag, digest)."""
    client = docker_client()
    try:
        build_image(
            client,
            DEMO_IMAGE,
            {"hello.sh": SCRIPT, "etc/demo-owner": b"the demo renter\n"},
            cmd=["/hello.sh"],
        )
        with Images(
            home=net.renter(renter_key).home,
            account=dev_account(renter_key, net.mnemonic),
            marketplace=net.market_url,
            docker_client=client,
        ) as images:
            pushed = images.push(DEMO_IMAGE)
    finally:
        client.close()
    return DEMO_IMAGE, split_pinned(pushed.record.ref)[1]
