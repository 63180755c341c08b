"""protocol.deployments refuses bad files with messages that say what to do."""

from __future__ import annotations

import json

import pytest

from protocol.deployments import load_deployment
from protocol.errors import DeploymentError


def test_missing_file_says_to_deploy(tmp_path):
    with pytest.raises(DeploymentError, match="deploy first"):
        load_deployment(31337, path=tmp_path / "none.json")


def test_unknown_chain_lists_the_chains_present(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"1337": {"chain_id": 1337, "contracts": {}}}))
    with pytest.raises(DeploymentError, match=r"nothing deployed on chain 31337 .*1337"):
        load_deployment(31337, path=path)


def test_corrupt_file_says_to_redeploy(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("{not json")
    with pytest.raises(DeploymentError, match="redeploy"):
        load_deployment(31337, path=path)


def test_malformed_entry_says_to_redeploy(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"31337": {"chain_id": 31337, "contracts": {"X": {}}}}))
    with pytest.raises(DeploymentError, match="malformed"):
        load_deployment(31337, path=path)
