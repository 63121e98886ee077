"""profiles.toml: validation with file:line errors, comment-preserving edits, safe writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fwknop_core import EncryptionMode, HmacType
from fwknop_tui.errors import ConfigFileError, ProfileExistsError, UnknownProfileError
from fwknop_tui.wallet.profiles import Profile, ProfileStore
from fwknop_tui.wallet.validate import FieldError, Transport

USER_FILE = """\
# my SPA targets -- keep this comment
[profiles.home]   # the home box
host = "198.18.0.1"   # router
# access below is what I need
access = ["tcp/22", "udp/53"]

# work stuff
[profiles.work]
host = "work.example.org"
transport = "tcp"
"""


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    path = tmp_path / "profiles.toml"
    path.write_text(USER_FILE)
    path.chmod(0o640)
    return ProfileStore(path)


def test_fields_are_parsed_and_defaults_filled(store: ProfileStore) -> None:
    home = store.get("home")
    assert home.access == ("tcp/22", "udp/53")
    assert home.port == 62201 and home.transport is Transport.UDP
    assert home.hmac_type is HmacType.SHA256 and home.encryption_mode is EncryptionMode.CBC
    assert store.get("work").transport is Transport.TCP
    assert store.names() == ["home", "work"]


def test_comments_and_order_survive_add_edit_rename_rm(store: ProfileStore) -> None:
    store.add(Profile.from_table("new", {"host": "198.18.0.9", "client_timeout": 30}))
    store.update(store.get("home").with_changes({"port": 4000, "access": "tcp/2222"}))
    store.rename("work", "office")
    store.remove("new")
    text = store.path.read_text()
    for comment in (
        "# my SPA targets -- keep this comment",
        "# the home box",
        "# router",
        "# access below is what I need",
        "# work stuff",
    ):
        assert comment in text
    assert text.index("[profiles.home]") < text.index("[profiles.office]")
    assert "[profiles.work]" not in text and "new" not in text
    assert store.get("home").port == 4000 and store.get("home").access == ("tcp/2222",)
    assert store.get("office").transport is Transport.TCP
    assert oct(store.path.stat().st_mode & 0o777) == "0o640"  # mode kept


def test_a_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.a]\nhost = "h.example"\n\n[profiles.b]\nhost = "x"\nport = 70000\n')
    store = ProfileStore(path)
    assert store.get("a").host == "h.example"  # one bad profile does not stop the others
    with pytest.raises(ConfigFileError) as err:
        store.get("b")
    assert str(err.value).startswith(f"{path}:6: profiles.b.port: ")
    assert "\n" not in str(err.value)


def test_unknown_fields_suggest_the_right_name(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.a]\nhost = "h"\nprot = 1\n')
    with pytest.raises(
        ConfigFileError, match=r":3: profiles.a.prot: unknown field \(did you mean 'port'\?\)"
    ):
        ProfileStore(path).get("a")


def test_check_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text('[profiles.a]\nhost = "h"\nport = 0\n[profiles.b]\ntransport = "smoke"\n')
    problems = ProfileStore(path).problems()
    keys = sorted(p.key or "" for p in problems)
    assert keys == ["profiles.a.port", "profiles.b.host", "profiles.b.transport"]


def test_bad_toml_is_reported_with_its_line_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    damaged = '[profiles.a]\nhost = "h"\nport = = 3\n'
    path.write_text(damaged)
    store = ProfileStore(path)
    with pytest.raises(ConfigFileError, match=rf"^{path}:3: not valid TOML"):
        store.get("a")
    with pytest.raises(ConfigFileError, match="nothing was changed"):
        store.add(Profile.from_table("b", {"host": "x"}))
    assert path.read_text() == damaged
    assert {p.name for p in tmp_path.iterdir()} == {"profiles.toml", ".profiles.toml.lock"}


def test_names_exist_once(store: ProfileStore) -> None:
    with pytest.raises(ProfileExistsError):
        store.add(Profile.from_table("home", {"host": "x"}))
    with pytest.raises(ProfileExistsError):
        store.rename("home", "work")
    with pytest.raises(UnknownProfileError, match="did you mean 'home'"):
        store.get("hom")


def test_new_file_is_private_and_ends_with_a_newline(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "sub" / "profiles.toml")
    store.add(Profile.from_table("a", {"host": "h.example", "access": ["tcp/22"]}))
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert store.path.read_text().endswith("\n")
    assert store.path.read_text().count("\n") >= 2


def test_a_failed_write_leaves_the_old_file(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.path.read_text()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.add(Profile.from_table("c", {"host": "h"}))
    assert store.path.read_text() == before
    assert sorted(
        p.name
        for p in store.path.parent.iterdir()
        if p.is_file() and not p.name.startswith(".profiles.toml.lock")
    ) == ["profiles.toml"]


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"encryption_mode": "legacy"}, "encryption_mode"),  # legacy with the default HMAC
        ({"encryption": "gpg"}, "gpg_recipient"),
        ({"access": ["tcp/22", "udp/53"], "nat_access": "10.0.0.2"}, "access"),
        ({"spoof_source": "198.18.0.7"}, "spoof_source"),
        ({"http_proxy": "p:3128"}, "http_proxy"),
        ({"allow_ip": "2001:db8::2"}, "allow_ip"),
        ({"nat_port": 4000}, "nat_port"),
        ({"access": []}, "access"),
    ],
)
def test_inconsistent_profiles_are_refused(table: dict[str, object], field: str) -> None:
    with pytest.raises(FieldError) as err:
        Profile.from_table("p", {"host": "h"} | table)
    assert err.value.field == field


def test_an_ipv6_allow_ip_needs_our_server_and_the_message_says_why() -> None:
    with pytest.raises(FieldError, match=r"C fwknopd 2\.6 refuses an IPv6 allow IP") as err:
        Profile.from_table("p", {"host": "h", "allow_ip": "2001:db8::2"})
    assert err.value.field == "allow_ip"
    ours = Profile.from_table(
        "p", {"host": "h", "allow_ip": "2001:db8::2", "server_type": "fwknop-tui"}
    )
    assert ours.allow_ip == "2001:db8::2"
    with pytest.raises(FieldError, match="IPv4-mapped"):
        Profile.from_table(
            "p", {"host": "h", "allow_ip": "::ffff:1.2.3.4", "server_type": "fwknop-tui"}
        )


def test_an_ipv6_nat_host_needs_our_server_and_the_message_says_why() -> None:
    table = {"host": "2001:db8::1", "access": ["tcp/22"], "nat_access": "[2001:db8:1::2]:22"}
    with pytest.raises(FieldError, match=r"C fwknopd 2\.6 refuses an IPv6 NAT host") as err:
        Profile.from_table("p", table)
    assert err.value.field == "nat_access"
    ours = Profile.from_table("p", table | {"server_type": "fwknop-tui"})
    assert ours.nat_host == "2001:db8:1::2"
    assert Profile.from_table("p", table | {"nat_access": "10.0.0.2:22"}).nat_host == "10.0.0.2"


def test_round_trip_of_every_field() -> None:
    full = Profile.from_table(
        "full",
        {
            "host": "2001:db8::1",
            "port": 1,
            "transport": "http",
            "random_port": True,
            "source_port": 5,
            "address_family": "ipv6",
            "server_type": "fwknop-tui",
            "access": ["udp/53"],
            "allow_ip": "resolve",
            "resolve_url": "https://ip.example/",
            "client_timeout": 9,
            "username": "bob",
            "time_offset": "-5m",
            "nat_access": "10.0.0.2:22",
            "nat_port": 2222,
            "encryption_mode": "ctr",
            "digest_type": "sha3_512",
            "hmac_type": "sha384",
            "key_format": "passphrase",
            "key_command": "pass show x",
            "verify": "[2001:db8::1]:22",
            "verify_retries": 3,
            "verify_interval": 0.5,
            "keep_open": 60,
            "http_proxy": "http://proxy:3128/",
            "user_agent": "UA",
        },
    )
    assert full.time_offset == -300 and full.key_command == ("pass", "show", "x")
    assert full.http_proxy == "proxy:3128"
    again = Profile.from_table("full", full.to_table())
    assert again == full


def test_the_example_file_is_a_valid_profiles_file() -> None:
    example = Path(__file__).resolve().parents[2] / "profiles.example.toml"
    store = ProfileStore(example)
    assert store.problems() == []
    names = [p.name for p in store.all()]
    assert names == [
        "ssh-home",
        "nas-web",
        "wake-backup",
        "office-gpg",
        "home-x25519",
        "legacy-knock",
        "legacy-shared",
    ]
    documented = set(re.findall(r"^#? ?([a-z_]+) = ", example.read_text(), re.M))
    from fwknop_tui.wallet.profiles import FIELDS

    assert set(FIELDS) <= documented, sorted(set(FIELDS) - documented)
