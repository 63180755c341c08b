"""One sentence per custom error the contracts (ours and OpenZeppelin's) can revert with.

A template names the error's arguments in braces: ``{jobId}``. A field is shown by its
kind: by default the one its argument's name implies (:data:`KINDS`; ``deadline`` is a
time, ``balance`` an amount of tokens), or the one written after a colon
(``{balance:eth}``). The CLI, the SDK and the dashboard render the same templates, so a
revert reads the same everywhere. Every error declared in the build artifacts must have
an entry (a test checks it).
"""

from __future__ import annotations

# argument name -> how its value is shown (see ``render.py``)
KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "deadline",
            "readyAt",
            "closedAt",
            "availableAt",
            "endsAt",
            "openUntil",
            "respondBy",
            "nextEpochAt",
            "endedAt",
            "expires",
            "earliest",
            "latest",
            "servingAt",
            "ranOutAt",
            "startAt",
        ),
        "time",
    ),
    **dict.fromkeys(
        (
            "balance",
            "needed",
            "allowance",
            "requested",
            "free",
            "locked",
            "activeStake",
            "minStake",
            "price",
            "collateral",
            "remaining",
            "available",
            "drip",
            "currentAllowance",
            "requestedDecrease",
            "deposit",
            "minimum",
            "amount",
        ),
        "tokens",
    ),
    **dict.fromkeys(("feeBps", "maxBps", "shareBps"), "bps"),
    **dict.fromkeys(("delay", "maxDelay", "epochLength"), "seconds"),
    "neededRole": "role",
}

SENTENCES: dict[str, str] = {
    # ---------------------------------------------------------------- JobEscrow
    "EscrowZeroPrice": "a job's price must be more than zero",
    "EscrowPriceTooHigh": "a price of {price} per replica is more than the escrow can hold",
    "EscrowBadReplicas": "a job needs 1 to {maxReplicas} replicas, not {replicas}",
    "EscrowBadProviders": "{given} providers were named where the job needs {expected}",
    "EscrowBadProvider": (
        "provider {provider} cannot be named here (it is empty, repeated, the job's own "
        "provider or the renter)"
    ),
    "EscrowDeadlineTooSoon": (
        "the deadline {deadline} must come after the accept window ends, {earliest}"
    ),
    "EscrowDeadlineTooLate": "the deadline {deadline} is too far away; the latest is {latest}",
    "EscrowJobNotLive": "job {jobId} is {status:jobstatus}, no longer open",
    "EscrowNotRenter": "only job {jobId}'s renter may do this, not {caller}",
    "EscrowNotProvider": "{caller} is not one of job {jobId}'s providers",
    "EscrowWindowClosed": "that window of job {jobId} closed at {closedAt}",
    "EscrowAlreadyAccepted": "provider {provider} has already accepted job {jobId}",
    "EscrowNoSlotFor": "job {jobId} has no free place for provider {provider}",
    "EscrowWrongReplicaState": (
        "provider {provider}'s part of job {jobId} is {state:replicastate}, which does not "
        "allow this step"
    ),
    "EscrowRevealTooEarly": (
        "job {jobId} cannot be revealed yet: {committed} of {replicas} replicas committed"
    ),
    "EscrowCommitmentMismatch": (
        "the result and salt do not match what provider {provider} committed for job {jobId}"
    ),
    "EscrowNotAllRevealed": (
        "job {jobId} cannot be confirmed yet: {revealed} of {replicas} replicas revealed"
    ),
    "EscrowNotCommitted": "job {jobId} cannot be confirmed yet: no result is committed",
    "EscrowResultHidden": "job {jobId} has a single replica: its result stays off chain",
    "EscrowNotFinalizable": "job {jobId} cannot be finalized until {readyAt}",
    "EscrowNotDisputable": (
        "job {jobId} cannot be disputed: only a single-replica job with a committed result can"
    ),
    "EscrowNotCancellable": (
        "job {jobId} cannot be cancelled now: a provider accepted it and its accept window "
        "has not lapsed, or a result is in"
    ),
    "EscrowNotNoShow": "cannot claim job {jobId} as a no-show yet",
    "EscrowStartTooLate": (
        "a job may be held at most two days: the start {startAt} is after {latest}"
    ),
    "EscrowNotStarted": "job {jobId} is held until {startAt}; nobody may accept it before",
    "EscrowEmptyBatch": "the batch is empty; pass at least one job",
    "EscrowBatchTooLarge": "a batch of {size} jobs is too large; send at most {maxSize} at once",
    "EscrowBatchLengthMismatch": (
        "the batch names {jobIds} jobs but {values} values; pass one value per job"
    ),
    "EscrowAssignmentExpired": "the marketplace's signed assignment expired at {expires}",
    "EscrowNotMatcherSigned": (
        "the assignment is signed by {signer}, not by the escrow's matcher {matcher}"
    ),
    # ---------------------------------------------------------------- EscrowCredits
    "EscrowZeroAddress": "an address given is empty (0x0)",
    "EscrowFeeTooHigh": "a fee of {feeBps} is above the most allowed, {maxBps}",
    "EscrowNothingToWithdraw": "nothing is credited to {account} in the escrow",
    # ---------------------------------------------------------------- StorageEscrow
    "StorageZeroPrice": "a storage deal's price must be more than zero",
    "StorageBadNode": "{node} cannot hold this deal",
    "StorageBadShape": (
        "a deal of {chunkCount} chunks over {epochs} epochs of {epochLength} is not allowed"
    ),
    "StorageNoTerms": "the storage escrow has no terms set yet",
    "StorageCollateralTooHigh": "a collateral of {collateral} is more than the escrow can hold",
    "StorageDealNotOffered": "deal {dealId} is {status:dealstatus}, not an open offer",
    "StorageDealNotActive": "deal {dealId} is {status:dealstatus}, not active",
    "StorageNotNode": "only deal {dealId}'s storage node may do this, not {caller}",
    "StorageNotRenter": "only deal {dealId}'s renter may do this, not {caller}",
    "StorageNotAuditor": "only deal {dealId}'s auditor may do this, not {caller}",
    "StorageWindowClosed": "that window of deal {dealId} closed at {closedAt}",
    "StorageNotCancellable": (
        "deal {dealId} cannot be cancelled: its offer stands until {openUntil}"
    ),
    "StorageNothingDue": "deal {dealId} owes nothing yet; the next epoch ends at {nextEpochAt}",
    "StorageChallengePending": "deal {dealId} has a challenge open until {respondBy}",
    "StorageAlreadyChallenged": "deal {dealId} was already challenged in epoch {epoch}",
    "StorageDealExpired": "deal {dealId} ended at {endedAt}",
    "StorageNoChallenge": "deal {dealId} has no open challenge",
    "StorageResponseNotLate": (
        "deal {dealId}'s node still has until {respondBy} to answer the challenge"
    ),
    "StorageBadProof": "the proof for chunk {chunkIndex} of deal {dealId} is wrong",
    "StorageChunkNotDrawn": (
        "deal {dealId}'s challenged chunk is drawn from block {drawBlock}, which is not mined yet"
    ),
    "StorageChunkExpired": (
        "deal {dealId}'s challenge drew from block {drawBlock}, too old to read; challenge again"
    ),
    # ---------------------------------------------------------------- LeaseEscrow
    "LeaseZeroRate": "a service's rate per second must be more than zero",
    "LeaseZeroDeposit": "the deposit must be more than zero",
    "LeaseDepositTooSmall": "a deposit of {deposit} is less than the minimum, {minimum}",
    "LeaseBadProvider": "{provider} cannot serve this lease (empty, or the renter itself)",
    "LeaseProviderInactive": "provider {provider} has too little stake to take leases",
    "LeaseAmountTooHigh": "an amount of {amount} is more than the escrow can hold",
    "LeaseNotOffered": "lease {leaseId} is {status:leasestatus}, not an open offer",
    "LeaseNotRunning": "lease {leaseId} is {status:leasestatus}, not running",
    "LeaseNotParty": "{caller} is neither lease {leaseId}'s renter nor its provider",
    "LeaseNotProber": "{caller} may not report on lease {leaseId}'s service",
    "LeaseNotProvider": "only lease {leaseId}'s provider may do this, not {caller}",
    "LeaseNotRenter": "only lease {leaseId}'s renter may do this, not {caller}",
    "LeaseNotServing": "lease {leaseId}'s service has not been seen serving yet",
    "LeaseNothingDue": "lease {leaseId} owes nothing yet",
    "LeaseAlreadyServing": "lease {leaseId}'s service is serving since {servingAt}",
    "LeaseRanOut": "lease {leaseId}'s deposit ran out at {ranOutAt}",
    "LeaseWindowClosed": "that window of lease {leaseId} closed at {closedAt}",
    "LeaseWindowOpen": "lease {leaseId}'s window is open until {openUntil}; wait for it to close",
    "LeaseBadInterval": (
        "a report for lease {leaseId} must cover seconds that passed: from {from:time} to "
        "{to:time} is empty or reaches the future"
    ),
    "LeaseNoQuorum": (
        "only {signers} distinct watchers signed that report of lease {leaseId}; it needs "
        "{quorum} (signatures in ascending signer order)"
    ),
    "LeaseBadWatchRules": (
        "watch rules need a quorum of at least 2, a grace of at most a day and a slash share "
        "of at most 100 %, not {quorum}, {grace:seconds} and {slashBps:bps}"
    ),
    "LeaseFailed": (
        "lease {leaseId} was down past its grace period from {failedAt:time}; end it or fail "
        "it over instead"
    ),
    "LeaseNotDownPastGrace": "lease {leaseId} has not been down past its grace period",
    "LeaseNoFailover": "lease {leaseId}'s renter agreed to no failover; its deposit is refunded",
    "LeaseRateAboveCap": (
        "a rate of {ratePerSecond:tokens} per second is above the {maxRatePerSecond:tokens} "
        "lease {leaseId}'s renter agreed to"
    ),
    # ---------------------------------------------------------------- ProviderRegistry
    "RegistryZeroAmount": "the amount must be more than zero",
    "RegistryProviderInactive": (
        "provider {provider} stakes {activeStake}, less than the {minStake} an active "
        "provider needs"
    ),
    "RegistryZeroAddress": "an address given is empty (0x0)",
    "RegistryInsufficientFreeStake": (
        "provider {provider} has {free} of free stake, less than the {requested} needed"
    ),
    "RegistryInsufficientLocked": (
        "provider {provider} has {locked} locked, less than the {requested} to release"
    ),
    "RegistryNothingUnbonding": "provider {provider} has no stake unbonding",
    "RegistryUnbondingNotReady": "provider {provider}'s unbonding stake is free at {readyAt}",
    "RegistryShareTooHigh": "a share of {shareBps} is above the most allowed, {maxBps}",
    "RegistryDelayTooLong": "a delay of {delay} is above the most allowed, {maxDelay}",
    # ---------------------------------------------------------------- ComputeToken, sale, faucet
    "ERC2612ExpiredSignature": "the token permit expired at {deadline}; sign a new one",
    "ERC2612InvalidSigner": "the token permit is signed by {signer}, not by its owner {owner}",
    "SaleZeroPrice": "the token sale's price must be more than zero",
    "SaleEnded": "the token sale ended at {endsAt}",
    "SaleNotEnded": "the token sale runs until {endsAt}",
    "SaleZeroPurchase": "send some ETH to buy tokens (sent: {value:eth})",
    "SaleCapExceeded": (
        "the token sale has {remaining} left under its cap; {requested} were asked for"
    ),
    "SaleInsufficientTokens": "the token sale holds {available}; {requested} were asked for",
    "FaucetCoolingDown": (
        "the faucet gives {account} tokens once per cooldown; try again at {availableAt}"
    ),
    "FaucetEmpty": "the faucet holds {balance}, less than one drip of {drip}",
    "FaucetWrongChain": "the faucet only runs on local development chains, not chain {chainId}",
    # ---------------------------------------------------------------- OpenZeppelin
    "ERC20InsufficientBalance": (
        "not enough tokens: {sender} holds {balance} and this needs {needed}"
    ),
    "ERC20InsufficientAllowance": (
        "{spender} may spend {allowance} of the tokens but needs {needed}; approve more"
    ),
    "ERC20InvalidApprover": "{approver} cannot approve token spending",
    "ERC20InvalidReceiver": "tokens cannot be sent to {receiver}",
    "ERC20InvalidSender": "tokens cannot be sent from {sender}",
    "ERC20InvalidSpender": "{spender} cannot be allowed to spend tokens",
    "InvalidAccountNonce": "{account}'s signature nonce is {currentNonce}; sign again with it",
    "ECDSAInvalidSignature": "the signature is not valid",
    "ECDSAInvalidSignatureLength": "the signature is {length} bytes long, not 65",
    "ECDSAInvalidSignatureS": "the signature is malformed (its s value is too high)",
    "AccessControlUnauthorizedAccount": "{account} lacks the {neededRole} role this needs",
    "AccessControlBadConfirmation": "an account can only renounce a role for itself",
    "OwnableUnauthorizedAccount": "only the contract's owner may do this, not {account}",
    "OwnableInvalidOwner": "{owner} cannot own the contract",
    "ReentrancyGuardReentrantCall": "the contract refused a call back into itself",
    "SafeERC20FailedOperation": "the token {token} refused the transfer",
    "SafeERC20FailedDecreaseAllowance": (
        "{spender}'s allowance is {currentAllowance}, less than the {requestedDecrease} to take off"
    ),
    "SafeCastOverflowedUintDowncast": "the number {value} does not fit in {bits} bits",
    "SafeCastOverflowedIntDowncast": "the number {value} does not fit in {bits} bits",
    "SafeCastOverflowedIntToUint": "the negative number {value} cannot be used here",
    "SafeCastOverflowedUintToInt": "the number {value} is too large here",
    "AddressEmptyCode": "no contract is deployed at {target}",
    "FailedCall": "a call the contract made failed",
    "FailedDeployment": "a contract deployment failed",
    "InsufficientBalance": "the contract holds {balance:eth}, less than the {needed:eth} to send",
    "MissingPrecompile": "the chain lacks the precompiled contract at {arg0}",
    "MerkleProofInvalidMultiproof": "the Merkle multiproof is malformed",
    # ---------------------------------------------------------------- Solidity's own
    "Error": "{reason}",
    "Panic": "the contract failed an internal check (panic code {code})",
    # ---------------------------------------------------------------- test contracts
    "ReentrantTokenCallFailed": "the test token's call back into {target} failed",
}
