"""Shared fixtures for the contract tests.

One deployment per test module (``deploy_all`` with short windows), reverted to a
snapshot around every test (brownie's ``fn_isolation``). Accounts:

    accounts[0]      deployer: token holder, owner / admin of everything, storage auditor,
                     lease prober
    accounts[1], [2] renters (funded, escrow approved)
    accounts[3..7]   providers (funded, 1 000 tokens staked each)
    accounts[8]      outsider: a third party with tokens and no role
    accounts[9]      treasury: receives fees (escrow credits) and slash shares
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import brownie
import brownie.test
import pytest
from brownie import DevFaucet, accounts, chain, web3
from brownie.exceptions import VirtualMachineError, decode_typed_error
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from protocol import leases as protocol_leases
from protocol import merkle
from protocol import permit as protocol_permit
from protocol.assignments import sign_assignment, sign_verifiers, unsigned
from scripts.deploy import DeployParams, deploy_all

TOKEN = 10**18
PRICE = 10 * TOKEN
STAKE = 1_000 * TOKEN
RENTER_TOKENS = 100_000 * TOKEN
PROVIDER_TOKENS = 10_000 * TOKEN
ZERO_ADDRESS = "0x" + "00" * 20

PARAMS = DeployParams(
    # more than 1 ETH per token, so a purchase can leave change to refund
    sale_price_wei=3 * 10**18 + 7,
    sale_days=30,
    min_stake=100 * TOKEN,
    unbonding_delay=1_000,
    slash_treasury_bps=2_000,
    fee_bps=200,
    accept_window=100,
    reveal_window=100,
    challenge_window=200,
    collateral_bps=10_000,
    storage_accept_window=100,
    storage_response_window=100,
    storage_collateral_bps=5_000,
    lease_accept_window=100,
    lease_serve_window=100,
    lease_collateral_bps=5_000,
    lease_quorum=2,
    lease_grace=120,
    lease_slash_bps=5_000,
    faucet_tokens=100_000 * TOKEN,
    faucet_drip=10_000 * TOKEN,
    faucet_cooldown=60,
)
FEE = PRICE * PARAMS.fee_bps // 10_000
COLLATERAL = PRICE * PARAMS.collateral_bps // 10_000
SLASH_TO_TREASURY = COLLATERAL * PARAMS.slash_treasury_bps // 10_000

# JobEscrowTypes enums
FUNDED, DISPUTED, SETTLED, CANCELLED = 1, 2, 3, 4
NONE, ACCEPTED, COMMITTED, REVEALED, PAID, SLASHED, RELEASED = range(7)
# StorageEscrowTypes.DealStatus
DEAL_OFFERED, DEAL_ACTIVE, DEAL_COMPLETED, DEAL_CANCELLED, DEAL_SLASHED = range(1, 6)
# LeaseEscrowTypes.LeaseStatus and EndReason
LEASE_OFFERED, LEASE_RUNNING, LEASE_ENDED = range(1, 4)
(
    CANCELLED_BEFORE_ACCEPT,
    NOT_ACCEPTED,
    CLOSED_BY_RENTER,
    CLOSED_BY_PROVIDER,
    OUT_OF_FUNDS,
    NEVER_SERVED,
    DOWN_PAST_GRACE,
    FAILED_OVER,
) = range(1, 9)


# ------------------------------------------------------------------ revert helper


_ERRORS: dict[str, list[tuple[str, list[str]]]] = {}


def _project_errors() -> dict[str, list[tuple[str, list[str]]]]:
    """Error name -> [(selector hex without 0x, argument types)] from the project's ABIs."""
    if not _ERRORS:
        for project in brownie.project.get_loaded_projects():
            for container in project:
                for item in container.abi:
                    if item.get("type") != "error":
                        continue
                    types = [_abi_type(i) for i in item["inputs"]]
                    signature = f"{item['name']}({','.join(types)})"
                    selector = function_signature_to_4byte_selector(signature).hex()
                    entry = (selector.removeprefix("0x"), types)
                    if entry not in _ERRORS.setdefault(item["name"], []):
                        _ERRORS[item["name"]].append(entry)
    return _ERRORS


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(i) for i in item["components"])
        return f"({inner}){item['type'][5:]}"
    return item["type"]


def _abi_value(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return str(value)
    if abi_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


def _render(name: str, args: Sequence[Any]) -> str:
    """The revert message brownie shows for error `name` with `args`."""
    for selector, types in _project_errors().get(name, []):
        if len(types) == len(args):
            values = [_abi_value(t, a) for t, a in zip(types, args, strict=True)]
            return decode_typed_error(f"0x{selector}{encode(types, values).hex()}")
    raise AssertionError(f"no error {name} with {len(args)} arguments in the project's ABIs")


@contextlib.contextmanager
def reverts_with(name: str, *args: Any) -> Iterator[None]:
    """Assert the block reverts with custom error `name` (and, if given, these arguments).

    Brownie 1.22 decodes a custom error it knows from a loaded ABI as
    ``"Name: arg1, arg2"`` (``"Name: "`` without arguments) and an unknown one as
    ``"Unknown typed error: 0x<selector><args>"``; ``brownie.reverts`` only compares
    that whole string. This matches the name exactly in the first form and the
    selector of any project error called `name` in the second. Arguments, when
    given, are ABI-encoded with the error's own types and rendered by brownie's
    decoder, so the whole message must match.
    """
    try:
        yield
    except VirtualMachineError as exc:
        message = exc.revert_msg or ""
        unknown = re.fullmatch(r"Unknown typed error: 0x([0-9a-fA-F]{8})[0-9a-fA-F]*", message)
        if unknown:
            selectors = {selector for selector, _ in _project_errors().get(name, [])}
            if unknown.group(1).lower() not in selectors:
                raise AssertionError(f"expected revert {name}, got {message!r}") from None
            if args:
                raise AssertionError(f"cannot check arguments of undecoded {message!r}") from None
            return
        if message.partition(":")[0] != name:
            raise AssertionError(f"expected revert {name}, got {message!r}") from None
        if args and message != (expected := _render(name, args)):
            raise AssertionError(f"expected revert {expected!r}, got {message!r}") from None
    else:
        raise AssertionError(f"expected revert {name}, but nothing reverted")


@pytest.fixture(scope="session")
def reverts() -> Any:
    """`with reverts("ErrorName"[, *args]):` (see `reverts_with`)."""
    return reverts_with


def plain(values: Any) -> tuple[Any, ...]:
    """A contract's multi-value return as a plain tuple of int / bytes / address.

    Brownie's return types compare awkwardly (`Wei == int` inside a ReturnValue raises;
    HexString refuses a hex string without 0x), so tests compare these instead.
    """
    return tuple(
        int(v) if isinstance(v, int) else bytes(v) if isinstance(v, bytes) else v for v in values
    )


# -------------------------------------------------------------------- time helper


def sleep_past(timestamp: int, *, margin: int = 2) -> None:
    """Move chain time so the next block is strictly after `timestamp` (+ margin)."""
    gap = timestamp - chain.time() + margin
    if gap > 0:
        chain.sleep(gap)
    chain.mine()


def land_at(timestamp: int) -> None:
    """Make the next block (the next transaction's) carry exactly `timestamp`.

    anvil takes it as ``evm_setNextBlockTimestamp``; Ganache 7 has no such call, but
    mining a block at `timestamp` - 1 leaves its clock there, and it stamps the next
    block one second later.
    """
    reply = web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    if "error" not in reply:
        return
    chain.mine(timestamp=timestamp - 1)


# ----------------------------------------------------------------------- stateful


class Revert(Exception):  # noqa: N818 (a predicted revert, not an error)
    """A stateful model's prediction that a call reverts with this custom error."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def need(condition: bool, error: str) -> None:
    """Model check: raise the predicted `Revert(error)` unless `condition` holds."""
    if not condition:
        raise Revert(error)


@pytest.fixture(scope="session")
def state_machine() -> Any:
    """Brownie's `state_machine`, loaded from the Python source brownie ships.

    eth-brownie 1.22.2 installs `brownie/test/stateful.py` compiled with mypyc, and the
    compiled `_BrownieStateMachine.__init__` rejects the very subclass `state_machine`
    builds from it ("TypeError: brownie.test.stateful._BrownieStateMachine object
    expected; got ...BrownieStateMachine"), so every stateful test fails before its first
    step. The module's pure-Python source, installed next to the compiled one, runs as
    documented; this fixture overrides brownie's own `state_machine` fixture with it.
    """
    source = Path(brownie.test.__file__).with_name("stateful.py")
    spec = importlib.util.spec_from_file_location("_brownie_stateful_source", source)
    assert spec is not None and spec.loader is not None, f"no {source}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.state_machine


# ----------------------------------------------------------------------- accounts


@pytest.fixture(autouse=True)
def isolation(fn_isolation: Any) -> None:
    pass


@pytest.fixture(scope="module")
def deployer() -> Any:
    return accounts[0]


@pytest.fixture(scope="module")
def renter() -> Any:
    return accounts[1]


@pytest.fixture(scope="module")
def renter2() -> Any:
    return accounts[2]


@pytest.fixture(scope="module")
def providers() -> list[Any]:
    return list(accounts[3:8])


@pytest.fixture(scope="module")
def outsider() -> Any:
    return accounts[8]


@pytest.fixture(scope="module")
def treasury() -> Any:
    return accounts[9]


# ---------------------------------------------------------------------- contracts


@pytest.fixture(scope="module")
def deployment(
    module_isolation: Any,
    deployer: Any,
    renter: Any,
    renter2: Any,
    providers: list[Any],
    outsider: Any,
    treasury: Any,
) -> dict[str, Any]:
    """Everything deployed and wired; renters funded and approved; providers staked."""
    contracts = deploy_all(deployer, params=PARAMS, treasury=treasury, matcher=MATCHER)
    token = contracts["ComputeToken"]
    tx = {"from": deployer}
    faucet = DevFaucet.deploy(token, PARAMS.faucet_drip, PARAMS.faucet_cooldown, tx)
    token.transfer(faucet, PARAMS.faucet_tokens, tx)
    contracts["DevFaucet"] = faucet
    escrow, registry = contracts["JobEscrow"], contracts["ProviderRegistry"]
    for account in (renter, renter2, outsider):
        token.transfer(account, RENTER_TOKENS, tx)
        token.approve(escrow, 2**256 - 1, {"from": account})
        token.approve(contracts["StorageEscrow"], 2**256 - 1, {"from": account})
        token.approve(contracts["LeaseEscrow"], 2**256 - 1, {"from": account})
    for provider in providers:
        token.transfer(provider, PROVIDER_TOKENS, tx)
        token.approve(registry, 2**256 - 1, {"from": provider})
        registry.stake(STAKE, {"from": provider})
    storage = contracts["StorageEscrow"]
    storage.grantRole(storage.AUDITOR_ROLE(), deployer, tx)  # as deploy does on local chains
    leases = contracts["LeaseEscrow"]
    leases.grantRole(leases.PROBER_ROLE(), deployer, tx)  # deploy grants the dev matcher's key
    for watcher in WATCHERS:
        leases.grantRole(leases.WATCHER_ROLE(), watcher, tx)
    leases.grantRole(leases.FAILOVER_ROLE(), deployer, tx)  # deploy grants the dev matcher's key
    return contracts


@pytest.fixture(scope="module")
def token(deployment: dict[str, Any]) -> Any:
    return deployment["ComputeToken"]


@pytest.fixture(scope="module")
def sale(deployment: dict[str, Any]) -> Any:
    return deployment["TokenSale"]


@pytest.fixture(scope="module")
def registry(deployment: dict[str, Any]) -> Any:
    return deployment["ProviderRegistry"]


@pytest.fixture(scope="module")
def escrow(deployment: dict[str, Any]) -> Any:
    return deployment["JobEscrow"]


@pytest.fixture(scope="module")
def faucet(deployment: dict[str, Any]) -> Any:
    return deployment["DevFaucet"]


# ------------------------------------------------------------------------ permits

PERMIT_KEY = web3.keccak(text="dcloud test permit signer").hex().removeprefix("0x")

# ----------------------------------------------------------------- the matcher

# The marketplace's matcher key: signs replicated jobs' providers and disputes' verifiers.
MATCHER_KEY = web3.keccak(text="dcloud test matcher").hex().removeprefix("0x")
MATCHER = Account.from_key(MATCHER_KEY).address
SPEC = web3.keccak(text="spec")


def assign(
    escrow: Any,
    renter: Any,
    providers: Sequence[Any],
    *,
    spec: bytes = SPEC,
    key: str = MATCHER_KEY,
    valid_for: int = 600,
) -> tuple[Any, ...]:
    """The `fund` assignment argument: named providers, signed by the matcher when replicated."""
    names = [str(p) for p in providers]
    if len(names) <= 1:
        return unsigned(names).as_arg()
    return sign_assignment(
        key,
        chain_id=chain.id,
        escrow=escrow.address,
        renter=str(renter),
        spec_hash=spec,
        providers=names,
        expires=chain.time() + valid_for,
    ).as_arg()


def verifiers_for(
    escrow: Any,
    job_id: int,
    verifiers: Sequence[Any],
    *,
    key: str = MATCHER_KEY,
    valid_for: int = 600,
) -> tuple[Any, ...]:
    """The `dispute` argument: two verifiers drawn (signed) by the matcher for `job_id`."""
    return sign_verifiers(
        key,
        chain_id=chain.id,
        escrow=escrow.address,
        job_id=job_id,
        providers=[str(v) for v in verifiers],
        expires=chain.time() + valid_for,
    ).as_arg()


def sign_permit(
    token: Any, key: str, spender: Any, value: int, deadline: int
) -> tuple[int, bytes, bytes]:
    """An ERC-2612 permit of the key's account for `spender`, signed over its next nonce."""
    return protocol_permit.sign_permit(
        key,
        token_name="dcloud Compute Token",
        token=token.address,
        chain_id=chain.id,
        spender=str(spender),
        value=value,
        nonce=token.nonces(Account.from_key(key).address),
        deadline=deadline,
    )


@pytest.fixture(scope="module")
def permit_signer(deployment: dict[str, Any], deployer: Any) -> Any:
    """A local account with a known key, tokens and a little ETH, but no approvals."""
    signer = accounts.add(PERMIT_KEY)
    deployer.transfer(signer, 10**18)
    deployment["ComputeToken"].transfer(signer, RENTER_TOKENS, {"from": deployer})
    return signer


# ------------------------------------------------------------------- job helpers


def commitment(result: bytes, salt: bytes, provider: Any) -> bytes:
    """keccak256(abi.encode(resultHash, salt, provider)), as JobEscrow.commit expects."""
    return web3.keccak(encode(["bytes32", "bytes32", "address"], [result, salt, str(provider)]))


def result_hash(label: str) -> bytes:
    return web3.keccak(text=f"result:{label}")


def salt_for(provider: Any) -> bytes:
    return web3.keccak(text=f"salt:{provider}")


class Jobs:
    """Drives JobEscrow through its steps with the conftest's accounts and prices."""

    def __init__(self, escrow: Any) -> None:
        self.escrow = escrow

    def fund(
        self,
        renter: Any,
        *,
        replicas: int = 1,
        providers: Sequence[Any] = (),
        price: int = PRICE,
        deadline_in: int = 200,
    ) -> int:
        deadline = chain.time() + PARAMS.accept_window + deadline_in
        tx = self.escrow.fund(
            SPEC,
            0,
            price,
            deadline,
            replicas,
            assign(self.escrow, renter, providers),
            {"from": renter},
        )
        return tx.return_value

    def dispute(self, job_id: int, renter: Any, verifiers: Sequence[Any]) -> Any:
        """Dispute `job_id` with verifiers the matcher signed."""
        return self.escrow.dispute(
            job_id, verifiers_for(self.escrow, job_id, verifiers), {"from": renter}
        )

    def accept(self, job_id: int, *providers: Any) -> None:
        for provider in providers:
            self.escrow.accept(job_id, {"from": provider})

    def commit(self, job_id: int, provider: Any, label: str) -> None:
        digest = commitment(result_hash(label), salt_for(provider), provider)
        self.escrow.commit(job_id, digest, {"from": provider})

    def reveal(self, job_id: int, provider: Any, label: str) -> None:
        self.escrow.reveal(job_id, result_hash(label), salt_for(provider), {"from": provider})

    def run(self, job_id: int, results: Sequence[tuple[Any, str]]) -> None:
        """Accept, commit and (replicated jobs) reveal: `results` is (provider, label) per
        replica. A single replica's result stays hidden until a dispute."""
        self.accept(job_id, *(p for p, _ in results))
        for provider, label in results:
            self.commit(job_id, provider, label)
        if self.job(job_id)["replicas"] == 1:
            return
        for provider, label in results:
            self.reveal(job_id, provider, label)

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self.escrow.getJob(job_id).dict())

    def states(self, job_id: int) -> list[int]:
        replicas = self.job(job_id)["replicas"]
        return [self.escrow.getReplica(job_id, i)[1] for i in range(replicas)]

    def sleep_past_challenge(self, job_id: int) -> None:
        sleep_past(self.escrow.finalizableAt(job_id))


@pytest.fixture(scope="module")
def jobs(escrow: Any) -> Jobs:
    return Jobs(escrow)


# ----------------------------------------------------------------- storage deals

EPOCH = 100  # seconds per epoch in the storage tests
EPOCHS = 4
EPOCH_PRICE = 2 * TOKEN
DEPOSIT = EPOCH_PRICE * EPOCHS
STORAGE_COLLATERAL = DEPOSIT * PARAMS.storage_collateral_bps // 10_000
EPOCH_FEE = EPOCH_PRICE * PARAMS.fee_bps // 10_000
SHARD = bytes(i * 7 % 251 for i in range(4 * 1024 + 300))  # 5 chunks, the last one short


def shard_id(label: str) -> bytes:
    return web3.keccak(text=f"shard:{label}")


class Deals:
    """Drives StorageEscrow with the conftest's accounts, prices and shard.

    Chunks, leaves, roots and proofs come from ``protocol.merkle``, the same code the
    storage node uses, so these tests also pin the Python tree to OpenZeppelin's
    MerkleProof.
    """

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    @staticmethod
    def terms(
        node: Any,
        *,
        data: bytes = SHARD,
        price: int = EPOCH_PRICE,
        epochs: int = EPOCHS,
        epoch_length: int = EPOCH,
        label: str = "s",
        chunk_count: int | None = None,
    ) -> tuple[Any, ...]:
        leaves = merkle.chunk_leaves(data)
        count = len(leaves) if chunk_count is None else chunk_count
        return (str(node), shard_id(label), merkle.root(leaves), count, price, epochs, epoch_length)

    def open(self, renter: Any, node: Any, **terms: Any) -> int:
        return int(self.storage.openDeal(self.terms(node, **terms), {"from": renter}).return_value)

    def open_active(self, renter: Any, node: Any, **terms: Any) -> int:
        deal_id = self.open(renter, node, **terms)
        self.storage.accept(deal_id, {"from": node})
        return deal_id

    def deal(self, deal_id: int) -> dict[str, Any]:
        return dict(self.storage.getDeal(deal_id).dict())

    def challenge(self, deal_id: int, sender: Any) -> int:
        """Challenge the deal, mine its draw block, return the chunk drawn from it.

        The dev chains mine only when something arrives, so the block whose hash
        draws the chunk is mined here, as the auditor agent does on them.
        """
        self.storage.challenge(deal_id, {"from": sender})
        chain.mine()
        return self.chunk(deal_id)

    def chunk(self, deal_id: int) -> int:
        """The pending challenge's chunk, from its draw block's hash (once mined)."""
        return drawn_chunk(
            self.storage.getChallenge(deal_id).dict()["drawBlock"],
            deal_id,
            self.deal(deal_id)["chunkCount"],
        )

    @staticmethod
    def answer(index: int, data: bytes = SHARD) -> tuple[bytes, list[bytes]]:
        """The chunk at `index` of `data` and its proof under the shard's root."""
        return _chunks(data)[index], merkle.proof(merkle.chunk_leaves(data), index)

    def respond(self, deal_id: int, node: Any, data: bytes = SHARD) -> Any:
        chunk, proof = self.answer(self.chunk(deal_id), data)
        return self.storage.respond(deal_id, chunk, proof, {"from": node})

    def sleep_epochs(self, deal_id: int, epochs: float) -> None:
        """Move to `epochs` epochs (may be fractional) after the deal's start."""
        deal = self.deal(deal_id)
        sleep_past(deal["start"] + int(epochs * deal["epochLength"]), margin=0)


def drawn_chunk(draw_block: int, deal_id: int, chunk_count: int) -> int:
    """keccak256(abi.encode(blockhash(drawBlock), dealId)) mod chunkCount, off chain."""
    block_hash = bytes(web3.eth.get_block(draw_block)["hash"])
    seed = web3.keccak(encode(["bytes32", "uint256"], [block_hash, deal_id]))
    return int.from_bytes(seed, "big") % chunk_count


def _chunks(data: bytes) -> list[bytes]:
    size = merkle.CHUNK_BYTES
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.fixture(scope="module")
def storage(deployment: dict[str, Any]) -> Any:
    return deployment["StorageEscrow"]


@pytest.fixture(scope="module")
def deals(storage: Any) -> Deals:
    return Deals(storage)


# ------------------------------------------------------------------------- leases

RATE = 10**15  # tokens (wei) per second in the lease tests
LEASE_DEPOSIT = RATE * 1_000  # 1 000 seconds of service
LEASE_COLLATERAL = LEASE_DEPOSIT * PARAMS.lease_collateral_bps // 10_000
LEASE_SPEC = web3.keccak(text="lease spec")


class Leases:
    """Drives LeaseEscrow with the conftest's accounts and rate."""

    def __init__(self, leases: Any, prober: Any) -> None:
        self.leases = leases
        self.prober = prober

    def open(
        self, renter: Any, provider: Any, *, rate: int = RATE, deposit: int = LEASE_DEPOSIT
    ) -> int:
        tx = self.leases.open(provider, rate, deposit, LEASE_SPEC, {"from": renter})
        return int(tx.return_value)

    def open_running(self, renter: Any, provider: Any, **terms: Any) -> int:
        lease_id = self.open(renter, provider, **terms)
        self.leases.accept(lease_id, {"from": provider})
        return lease_id

    def open_serving(self, renter: Any, provider: Any, **terms: Any) -> int:
        lease_id = self.open_running(renter, provider, **terms)
        self.leases.reportServing(lease_id, {"from": self.prober})
        return lease_id

    def lease(self, lease_id: int) -> dict[str, Any]:
        return dict(self.leases.getLease(lease_id).dict())

    @staticmethod
    def sleep_to(timestamp: int) -> None:
        """Make the next transaction's block land exactly at `timestamp`."""
        land_at(timestamp)


@pytest.fixture(scope="module")
def leases(deployment: dict[str, Any]) -> Any:
    return deployment["LeaseEscrow"]


@pytest.fixture(scope="module")
def lease_driver(leases: Any, deployer: Any) -> Leases:
    return Leases(leases, deployer)


# ----------------------------------------------------------------------- watchers

# Watchers only sign (the poster pays gas), so they are bare keys: three appointed by
# the deployment fixture, and one stranger nobody appointed.
WATCHER_KEYS = [
    web3.keccak(text=f"dcloud test watcher {i}").hex().removeprefix("0x") for i in range(3)
]
WATCHERS = [Account.from_key(k).address for k in WATCHER_KEYS]
STRANGER_KEY = web3.keccak(text="dcloud test stranger watcher").hex().removeprefix("0x")


def watch_sig(
    leases: Any, key: str, lease_id: int, start: int, end: int, *, up: bool = False, **where: Any
) -> tuple[str, bytes]:
    """(signer, signature) of a watcher's report; `where` may override chain_id / escrow."""
    signature = protocol_leases.sign_watch_report(
        key,
        chain_id=where.get("chain_id", chain.id),
        escrow=where.get("escrow", leases.address),
        lease_id=lease_id,
        start=start,
        end=end,
        up=up,
    )
    return Account.from_key(key).address, signature


def down(
    leases: Any, lease_id: int, start: int, end: int, keys: Sequence[str] = WATCHER_KEYS[:2]
) -> tuple[Any, ...]:
    """A `reportDown` entry signed by `keys` (by default a quorum of two watchers)."""
    signed = [watch_sig(leases, k, lease_id, start, end) for k in keys]
    return protocol_leases.down_report(lease_id, start, end, signed)
