"""The `reverts` helper asserts the custom error by name, and fails otherwise."""

import brownie
import pytest
from brownie.exceptions import VirtualMachineError
from eth_utils import function_signature_to_4byte_selector


def test_brownie_reverts_compares_the_whole_decoded_message(escrow, outsider):
    """Why the helper exists: brownie.reverts("Name") alone never matches a custom error."""
    with (
        pytest.raises(AssertionError, match="Unexpected revert string"),
        brownie.reverts("EscrowNothingToWithdraw"),
    ):
        escrow.withdraw({"from": outsider})
    with brownie.reverts(f"EscrowNothingToWithdraw: {outsider.address.lower()}"):
        escrow.withdraw({"from": outsider})


def test_reverts_matches_custom_error_name(escrow, outsider, reverts):
    with reverts("EscrowNothingToWithdraw"):
        escrow.withdraw({"from": outsider})


def test_reverts_matches_custom_error_arguments(escrow, outsider, reverts):
    with reverts("EscrowNothingToWithdraw", outsider.address):
        escrow.withdraw({"from": outsider})


def test_reverts_fails_on_mismatched_error_name(escrow, outsider, reverts):
    with (
        pytest.raises(AssertionError, match="expected revert EscrowJobNotLive"),
        reverts("EscrowJobNotLive"),
    ):
        escrow.withdraw({"from": outsider})


def test_reverts_fails_on_error_name_prefix(escrow, outsider, reverts):
    with (
        pytest.raises(AssertionError, match="expected revert EscrowNothing"),
        reverts("EscrowNothing"),
    ):
        escrow.withdraw({"from": outsider})


def test_reverts_fails_on_mismatched_arguments(escrow, outsider, renter, reverts):
    with (
        pytest.raises(AssertionError, match=r"expected revert 'EscrowNothingToWithdraw: "),
        reverts("EscrowNothingToWithdraw", renter.address),
    ):
        escrow.withdraw({"from": outsider})


def test_reverts_fails_when_nothing_reverts(token, renter, outsider, reverts):
    with (
        pytest.raises(AssertionError, match="nothing reverted"),
        reverts("ERC20InsufficientBalance"),
    ):
        token.transfer(outsider, 1, {"from": renter})


def _undecoded(signature: str) -> VirtualMachineError:
    selector = function_signature_to_4byte_selector(signature).hex()
    data = f"0x{selector}{'00' * 32}"
    exc = VirtualMachineError(ValueError({"message": "execution reverted", "data": data}))
    # as brownie renders an error whose ABI it has not loaded
    exc.revert_msg = f"Unknown typed error: {data}"
    return exc


def test_reverts_matches_undecoded_error_by_selector(reverts):
    with reverts("EscrowNothingToWithdraw"):
        raise _undecoded("EscrowNothingToWithdraw(address)")


def test_reverts_fails_on_undecoded_error_with_other_selector(reverts):
    with (
        pytest.raises(AssertionError, match="expected revert EscrowJobNotLive"),
        reverts("EscrowJobNotLive"),
    ):
        raise _undecoded("EscrowNothingToWithdraw(address)")
