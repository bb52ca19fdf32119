"""The one rule for names (``names.py``) and who may use one (``identity.py``), without a server.

The same rules attacked through a real server are in ``test_security_names.py``.
"""

from __future__ import annotations

import pytest

from course_server.realtime.names import BadName, name_problem, plain_name
from course_server.security.identity import Identity, owner

USERS = ("alice", "bob")


def test_a_fullwidth_name_is_normalised_to_plain_letters() -> None:
    assert plain_name("username", "\uff41\uff4c\uff49\uff43\uff45") == "alice"


def test_a_mathematical_bold_name_is_normalised_too() -> None:
    assert plain_name("username", "\U0001d41a\U0001d41b") == "ab"


@pytest.mark.parametrize("filler", ["\u3164", "\u115f", "\u1160", "\uffa0"])
def test_filler_letters_are_refused_naming_the_code_point(filler: str) -> None:
    with pytest.raises(BadName, match=f"invisible character U\\+{ord(filler):04X}"):
        plain_name("username", f"ana{filler}")


@pytest.mark.parametrize("char", ["\x00", "\u202e", "\u200b", "\u2800", "\ue000", "\u0378"])
def test_control_format_private_use_unassigned_and_blank_characters_are_refused(
    char: str,
) -> None:
    assert name_problem("username", f"ana{char}") is not None


@pytest.mark.parametrize("name", ["\u0430lice", "p\u0430ypal", "\u03b1lpha", "abc\u0663"])
def test_a_name_mixing_latin_with_another_script_is_refused(name: str) -> None:
    with pytest.raises(BadName, match="mixes scripts"):
        plain_name("username", name)


@pytest.mark.parametrize(
    "name", ["Zoë", "東京", "田中たなか", "カタカナー", "김철수", "Ωμέγα_2", "Иван", "田中taro"]
)
def test_one_script_or_the_mixes_cjk_names_need_pass(name: str) -> None:
    assert name_problem("username", name) is None


def test_the_reason_names_the_kind_of_name() -> None:
    assert name_problem("room name", "a b") == (
        "Invalid room name: 1-32 letters, digits, '_', '.' or '-'"
    )


def test_owner_matches_a_registered_name_in_any_case() -> None:
    assert owner("ALICE", USERS) == "alice"
    assert owner("ana", USERS) is None


def test_a_registered_name_without_proof_is_refused() -> None:
    assert Identity().claim_problem("alice", USERS, guests=True) == (
        "alice is a registered user: sign in to use this name"
    )


def test_a_registered_name_with_its_users_proof_is_allowed() -> None:
    assert Identity(user="alice").claim_problem("alice", USERS, guests=True) is None


def test_another_users_proof_is_refused() -> None:
    assert Identity(user="bob").claim_problem("alice", USERS, guests=True) is not None


def test_a_refused_token_is_refused_whatever_the_name() -> None:
    assert Identity(refused="Token expired").claim_problem("ana", USERS, guests=True) == (
        "Token expired"
    )


def test_a_guest_name_without_proof_is_allowed() -> None:
    assert Identity().claim_problem("ana", USERS, guests=True) is None


def test_without_guests_a_guest_name_needs_a_signed_in_user() -> None:
    assert Identity().claim_problem("ana", USERS, guests=False) is not None


def test_a_signed_in_users_budget_is_theirs_wherever_they_connect_from() -> None:
    assert Identity(user="alice", address="10.0.0.1").budget == "user:alice"
    assert Identity(user="alice", address="10.0.0.2").budget == "user:alice"


def test_guests_budget_is_their_address_whatever_names_they_take() -> None:
    assert Identity(address="10.0.0.1").budget == "guest@10.0.0.1"


@pytest.mark.parametrize(
    "name",
    [
        "\u0430\u04cf\u0456\u0441\u0435",  # all Cyrillic: one script, looks like alice
        "\u0410\u04c0\u0406\u0421\u0415",  # all Cyrillic capitals: looks like ALICE
        "al\u0131ce",  # Latin dotless i
        "aIice",  # capital I for l
        "al1ce",
    ],
)
def test_a_name_that_looks_like_a_registered_one_is_owned_by_that_user(name: str) -> None:
    assert name_problem("username", name) is None  # a plain name: one script
    assert owner(name, USERS) == "alice"


@pytest.mark.parametrize("name", ["B0B", "\u0412\u041e\u0412", "\u0392\u039f\u0392"])
def test_lookalikes_of_bob_are_bobs(name: str) -> None:
    assert owner(name, USERS) == "bob"


def test_names_that_only_share_letters_with_a_user_are_guests() -> None:
    assert [owner(n, USERS) for n in ("Иван", "alicia", "bobby", "ali")] == [None] * 4


def test_guests_of_one_ipv6_network_share_one_budget() -> None:
    # One customer holds a whole /64: an address per connection would be a budget per connection.
    one = Identity(address="2001:db8:1:2::1").budget
    assert Identity(address="2001:db8:1:2:ffff:eeee:dddd:1").budget == one
    assert Identity(address="2001:db8:1:3::1").budget != one


def test_an_ipv4_mapped_address_is_that_ipv4_address() -> None:
    assert Identity(address="::ffff:10.0.0.1").budget == Identity(address="10.0.0.1").budget
