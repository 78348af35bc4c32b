"""The router's TOML configuration: every key, every error."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

import wamp_core
from wamp_trio._config import (
    DEFAULT_CONFIG,
    MAX_MESSAGE_SIZE,
    ConfigError,
    Limits,
    RealmConfig,
    RoleConfig,
    RouterConfig,
    TcpListener,
    TlsConfig,
    UnixListener,
    build_router,
    load_config,
    parse_config,
)

FULL = """
[router]
auto_create_realms = true
strict_request_ids = false
shutdown_timeout = 2.5

[[realms]]
name = "realm1"

[[realms]]
name = "com.example"

[[listeners]]
type = "tcp"
host = "::1"
port = 9000
websocket = "/wamp"
longpoll = false
rawsocket = false

[[listeners]]
type = "tcp"
port = 0
websocket = false
longpoll = "/poll"

[[listeners]]
type = "unix"
path = "/run/wampcore.sock"

[limits]
queue_size = 64
slow_consumer = "disconnect"
max_message_size = 65536

[logging]
level = "DEBUG"
"""


def test_every_key() -> None:
    config = parse_config(FULL)
    assert config == RouterConfig(
        realms=(RealmConfig("realm1"), RealmConfig("com.example")),
        auto_create_realms=True,
        strict_request_ids=False,
        shutdown_timeout=2.5,
        listeners=(
            TcpListener("::1", 9000, "/wamp", None, False),
            TcpListener("127.0.0.1", 0, None, "/poll", True),
            UnixListener("/run/wampcore.sock"),
        ),
        limits=Limits(64, "disconnect", 65536),
        log_level="debug",
    )
    assert config.realm_names == ["realm1", "com.example"]
    assert config.logging_level == logging.DEBUG
    assert [listener.where for listener in config.listeners] == [
        "listeners[0]",
        "listeners[1]",
        "listeners[2]",
    ]


def test_empty_file_is_the_default() -> None:
    assert parse_config("") == DEFAULT_CONFIG
    assert DEFAULT_CONFIG.realm_names == ["realm1"]
    assert DEFAULT_CONFIG.listeners == (TcpListener(), UnixListener())
    assert DEFAULT_CONFIG.limits == Limits(1024, "drop", MAX_MESSAGE_SIZE)
    assert DEFAULT_CONFIG.logging_level == logging.INFO


def test_sections_can_be_given_alone() -> None:
    config = parse_config("[limits]\nqueue_size = 8\n")
    assert config.limits.queue_size == 8
    assert config.listeners == DEFAULT_CONFIG.listeners
    assert config.realms == DEFAULT_CONFIG.realms


def test_no_realms_with_auto_create() -> None:
    config = parse_config("realms = []\n[router]\nauto_create_realms = true\n")
    assert (config.realms, config.auto_create_realms) == ((), True)


def test_parsed_mapping_is_accepted() -> None:
    config = parse_config({"listeners": [{"type": "unix", "path": "a.sock"}]})
    assert config.listeners == (UnixListener("a.sock"),)


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    file = tmp_path / "router.toml"
    file.write_text(
        '[[listeners]]\ntype = "tcp"\ntls = { cert = "cert.pem", key = "key.pem" }\n'
        '[[listeners]]\ntype = "unix"\npath = "r.sock"\n'
    )
    config = load_config(file)
    tcp, unix = config.listeners
    assert isinstance(tcp, TcpListener)
    assert tcp.tls == TlsConfig(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert tcp.tls.where == "listeners[0].tls"
    assert unix == UnixListener(str(tmp_path / "r.sock"))
    assert parse_config('[[listeners]]\ntype = "unix"\npath = "r.sock"\n').listeners == (
        UnixListener("r.sock"),
    )


def test_tls_files_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    tls = TlsConfig(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), "listeners[3].tls")
    with pytest.raises(ConfigError, match=r"^listeners\[3\]\.tls: cannot load certificate"):
        tls.ssl_context()


def test_tls_with_a_real_certificate(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    context = TlsConfig(cert, key).ssl_context()
    assert context.check_hostname is False


def make_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (PEM files)."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime
    import ipaddress

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert), str(key)


TCP = '[[listeners]]\ntype = "tcp"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        # unknown keys, everywhere
        ("bogus = 1", "bogus: unknown key (expected one of: router, realms, listeners,"),
        ("[router]\nauto_create = true", "router.auto_create: unknown key"),
        ('[[realms]]\nname = "a"\nusers = {}', "realms[0].users: unknown key (expected one of"),
        (TCP + "tls_cert = 'x'", "listeners[0].tls_cert: unknown key"),
        ('[[listeners]]\ntype = "unix"\npath = "x"\nhost = "h"', "listeners[0].host: unknown"),
        (TCP + "tls = { cert = 'a', key = 'b', crl = 'c' }", "listeners[0].tls.crl: unknown key"),
        ("[limits]\nqueue = 1", "limits.queue: unknown key"),
        ("[logging]\nfile = 'x'", "logging.file: unknown key"),
        # wrong shapes
        ("router = 1", "router: must be a table, not an integer"),
        ("realms = 'realm1'", "realms: must be an array of tables ([[realms]]), not a string"),
        ("realms = ['realm1']", "realms[0]: must be a table, not a string"),
        ("listeners = {}", "listeners: must be an array of tables ([[listeners]]), not a table"),
        ("listeners = [1]", "listeners[0]: must be a table, not an integer"),
        (TCP + "tls = 'x'", "listeners[0].tls: must be a table, not a string"),
        ("limits = []", "limits: must be a table, not an array"),
        # router
        ("[router]\nauto_create_realms = 1", "router.auto_create_realms: must be true or false"),
        ("[router]\nstrict_request_ids = 'no'", "router.strict_request_ids: must be true or"),
        ("[router]\nshutdown_timeout = -1", "router.shutdown_timeout: must be a number >= 0"),
        ("[router]\nshutdown_timeout = true", "shutdown_timeout: must be a number >= 0 (seconds)"),
        ("[router]\nshutdown_timeout = nan", "router.shutdown_timeout: must be a number >= 0"),
        # realms
        ("[[realms]]", "realms[0].name: is required"),
        ("[[realms]]\nname = 1", "realms[0].name: must be a string, not an integer"),
        ('[[realms]]\nname = "a b"', "realms[0].name: 'a b' is not a valid URI"),
        ('[[realms]]\nname = "a"\n[[realms]]\nname = "a"', "realms[1].name: duplicate realm 'a'"),
        ("realms = []", "realms: no realm is configured and router.auto_create_realms is false"),
        # listeners
        ("listeners = []", "listeners: at least one listener is required"),
        ("[[listeners]]\nport = 1", "listeners[0].type: is required ('tcp' or 'unix')"),
        ('[[listeners]]\ntype = "udp"', "listeners[0].type: must be 'tcp' or 'unix', not 'udp'"),
        (TCP + "host = 1", "listeners[0].host: must be a string, not an integer"),
        (TCP + 'host = ""', "listeners[0].host: must not be empty"),
        (TCP + "port = 65536", "listeners[0].port: must be an integer in 0..65535, not 65536"),
        (TCP + "port = -1", "listeners[0].port: must be an integer in 0..65535, not -1"),
        (TCP + "port = '80'", "listeners[0].port: must be an integer in 0..65535, not '80'"),
        (TCP + "port = true", "listeners[0].port: must be an integer in 0..65535, not true"),
        (TCP + "port = 80.0", "listeners[0].port: must be an integer in 0..65535, not 80.0"),
        (TCP + "websocket = true", "listeners[0].websocket: must be a path starting with '/' or"),
        (TCP + "websocket = 'ws'", "listeners[0].websocket: must start with '/', not 'ws'"),
        (TCP + "longpoll = '/l p'", "listeners[0].longpoll: '/l p' is not a plain URL path"),
        (TCP + "longpoll = '/lp?x'", "listeners[0].longpoll: '/lp?x' is not a plain URL path"),
        (TCP + "rawsocket = 'yes'", "listeners[0].rawsocket: must be true or false, not a string"),
        (
            TCP + "websocket = false\nlongpoll = false\nrawsocket = false",
            "listeners[0]: websocket, longpoll and rawsocket are all off: nothing to serve",
        ),
        (TCP + "websocket = '/lp'", "listeners[0].websocket: path '/lp' lies under the long-poll"),
        (TCP + "websocket = '/x/ws'\nlongpoll = '/x/'", "listeners[0].websocket: path '/x/ws'"),
        (TCP + "tls = { key = 'k' }", "listeners[0].tls.cert: is required"),
        (TCP + "tls = { cert = 1, key = 'k' }", "listeners[0].tls.cert: must be a string, not an"),
        (TCP + "tls = { cert = '/nonexistent/c', key = 'k' }", "listeners[0].tls.cert: no such"),
        ('[[listeners]]\ntype = "unix"', "listeners[0].path: is required"),
        ('[[listeners]]\ntype = "unix"\npath = 1', "listeners[0].path: must be a string"),
        (
            '[[listeners]]\ntype = "unix"\npath = "a"\n' + TCP + "port = 99999",
            "listeners[1].port: must be an integer in 0..65535",
        ),
        # limits
        ("[limits]\nqueue_size = 0", "limits.queue_size: must be an integer >= 1, not 0"),
        ("[limits]\nslow_consumer = 'block'", "limits.slow_consumer: must be one of 'drop', 'dis"),
        ("[limits]\nmax_message_size = 511", "limits.max_message_size: must be an integer in 512"),
        ("[limits]\nmax_message_size = 16777217", "max_message_size: must be an integer in 512..1"),
        # logging
        ("[logging]\nlevel = 'loud'", "logging.level: must be one of 'debug', 'info', 'warning'"),
        ("[logging]\nlevel = 10", "logging.level: must be one of 'debug', 'info', 'warning', 'er"),
        # not TOML at all
        ("[router", "config: invalid TOML: "),
    ],
)
def test_errors_name_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(toml)
    assert str(caught.value).startswith(message) or message in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value) == f"{caught.value.key}: {caught.value.problem}"


def test_tls_key_file_must_exist(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match=r"^listeners\[0\]\.tls\.key: no such file: .*k\.pem$"):
        parse_config(TCP + "tls = { cert = 'c.pem', key = 'k.pem' }", base=tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read the file: No such file"):
        load_config(missing)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"binary\.toml: cannot read the file: 'utf-8' codec"):
        load_config(binary)
    bad = tmp_path / "bad.toml"
    bad.write_text("x = \n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_config(bad)


def test_replace_checks_again() -> None:
    assert DEFAULT_CONFIG.replace(log_level="debug").log_level == "debug"
    with pytest.raises(ConfigError, match="at least one listener"):
        DEFAULT_CONFIG.replace(listeners=())


def test_keys_are_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "config.md").read_text()
    assert "config.md" in (Path(__file__).parents[2] / "docs" / "router.md").read_text()
    keys: dict[str, Any] = {
        "router": [
            "auto_create_realms",
            "strict_request_ids",
            "shutdown_timeout",
            "meta_api",
            "event_history",
            "limit",
        ],
        "realms": ["name", "anonymous", "principals", "roles"],
        "principals": ["authid", "role", "ticket", "wampcra", "cryptosign", "scram"],
        "wampcra": ["secret", "salt", "iterations", "keylen"],
        "scram": ["password", "kdf", "memory", "stored-key", "server-key"],
        "permissions": ["uri", "match", "call", "register", "publish", "subscribe"],
        "disclose": ["disclose_caller", "disclose_publisher"],
        "listeners": ["type", "host", "port", "websocket", "longpoll", "rawsocket", "tls", "path"],
        "tls": ["cert", "key", "ca", "client_cert"],
        "limits": [
            "queue_size",
            "slow_consumer",
            "max_message_size",
            "max_sessions",
            "max_sessions_per_realm",
            "max_pending_calls",
            "max_subscriptions",
            "max_registrations",
            "max_retained_topics",
            "max_realms",
            "handshake_timeout",
            "longpoll_idle_timeout",
            "keepalive_interval",
            "keepalive_timeout",
            "rawsocket_pings",
            "websocket_max_message_size",
            "rawsocket_max_message_size",
            "longpoll_max_body_size",
        ],
        "logging": ["level"],
    }
    for section, names in keys.items():
        assert section in doc
        for name in names:
            assert f"`{name}`" in doc, name


# -- authentication and authorization ----------------------------------------------------

SCRAM_HEX = {
    "kdf": "pbkdf2",
    "iterations": 4096,
    "salt": "00112233445566778899aabbccddeeff",
    "stored-key": "11" * 32,
    "server-key": "22" * 32,
}

SECURED = f"""
[router]
meta_api = false

[[router.event_history]]
uri = "com.example.news"
limit = 10

[[router.event_history]]
uri = "com.example."
match = "prefix"

[[realms]]
name = "realm1"
anonymous = "guest"

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
call = true
register = true
publish = true
subscribe = true
disclose_caller = true
disclose_publisher = true

[[realms.roles.permissions]]
uri = "com..get"
match = "wildcard"
call = true

[[realms.roles.permissions]]
uri = ""
match = "prefix"

[[realms.roles]]
name = "guest"

[[realms.principals]]
authid = "alice"
role = "user"
ticket = "t"
wampcra = {{ secret = "s" }}
cryptosign = ["{"AB" * 32}"]

[[realms.principals]]
authid = "carol"
role = "user"
wampcra = {{ secret = "s", salt = "salt", iterations = 10, keylen = 16 }}
[realms.principals.scram]
kdf = "pbkdf2"
iterations = 4096
salt = "{SCRAM_HEX["salt"]}"
stored-key = "{"11" * 32}"
server-key = "{"22" * 32}"

[[realms.principals]]
authid = "erin"
role = "guest"
scram = {{ password = "pw", kdf = "argon2id-13", iterations = 1, memory = 64 }}

[[realms]]
name = "open"
"""


def test_secured_realm_keys() -> None:
    config = parse_config(SECURED)
    assert config.meta_api is False
    assert config.event_history == (
        wamp_core.HistoryRule("com.example.news", "exact", 10),
        wamp_core.HistoryRule("com.example.", "prefix", 100),
    )
    realm, open_realm = config.realms
    assert open_realm == RealmConfig("open")
    assert not open_realm.secured
    assert realm.secured
    assert realm.anonymous == "guest"
    assert realm.roles == (
        RoleConfig(
            "user",
            (
                wamp_core.Permission("com.example.", "prefix", True, True, True, True, True, True),
                wamp_core.Permission("com..get", "wildcard", call=True),
                wamp_core.Permission("", "prefix"),
            ),
        ),
        RoleConfig("guest"),
    )
    alice, carol, erin = realm.principals
    assert (alice.authid, alice.role, alice.ticket) == ("alice", "user", "t")
    assert alice.wampcra == wamp_core.CraCredential("s")
    assert alice.cryptosign == ("ab" * 32,)
    assert carol.wampcra == wamp_core.CraCredential.salted("s", "salt", 10, 16)
    assert carol.credentials["wamp-scram"] == wamp_core.ScramCredential.from_dict(SCRAM_HEX)
    derived = erin.credentials["wamp-scram"]
    assert (derived.kdf, derived.iterations, derived.memory) == ("argon2id-13", 1, 64)
    router = build_router(config)
    assert router.meta is None
    assert router.authorizer is not None
    assert [rule.uri for rule in router.event_history] == ["com.example.news", "com.example."]


def test_open_realms_build_the_default_router() -> None:
    router = build_router(DEFAULT_CONFIG)
    assert router.authorizer is None
    assert isinstance(router.authenticator, wamp_core.AnonymousAuthenticator)
    assert router.meta is not None


def test_a_realm_with_roles_only_is_secured() -> None:
    config = parse_config('[[realms]]\nname = "r"\nroles = []\n')
    assert config.realms[0].secured
    assert config.realms[0].principals == ()


REALM = '[[realms]]\nname = "r"\n'
ROLE = '[[realms.roles]]\nname = "user"\n'
PRINCIPAL = '[[realms.principals]]\nauthid = "a"\nrole = "user"\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        # router
        ("[router]\nmeta_api = 1", "router.meta_api: must be true or false"),
        ("[router]\nevent_history = 1", "router.event_history: must be an array of tables"),
        ("[[router.event_history]]\nlimit = 1", "router.event_history[0].uri: is required"),
        ("[[router.event_history]]\nuri = 'a b'", "router.event_history[0].uri: 'a b' is not a"),
        (
            "[[router.event_history]]\nuri = 'a'\nmatch = 'regex'",
            "router.event_history[0].match: must be one of 'exact', 'prefix', 'wildcard'",
        ),
        (
            "[[router.event_history]]\nuri = 'a'\nlimit = 0",
            "router.event_history[0].limit: must be an integer >= 1, not 0",
        ),
        ("[[router.event_history]]\nuri = 'a'\nsize = 1", "router.event_history[0].size: unknown"),
        # realms
        (REALM + "anonymous = 'guest'", "realms[0].anonymous: role 'guest' is not defined in"),
        (REALM + "anonymous = 1", "realms[0].anonymous: must be a string, not an integer"),
        (REALM + "anonymous = ''", "realms[0].anonymous: must not be empty"),
        (REALM + "roles = {}", "realms[0].roles: must be an array of tables ([[realms.roles]])"),
        (REALM + "principals = 1", "realms[0].principals: must be an array of tables"),
        # roles
        (REALM + "[[realms.roles]]", "realms[0].roles[0].name: is required"),
        (REALM + ROLE + ROLE, "realms[0].roles[1].name: duplicate role 'user'"),
        (REALM + ROLE + "perms = []", "realms[0].roles[0].perms: unknown key"),
        (REALM + ROLE + "permissions = [1]", "realms[0].roles[0].permissions[0]: must be a table"),
        (REALM + ROLE + "permissions = [{}]", "realms[0].roles[0].permissions[0].uri: is required"),
        (
            REALM + ROLE + "permissions = [{ uri = 'a..b' }]",
            "realms[0].roles[0].permissions[0].uri: 'a..b' is not a valid URI for match 'exact'",
        ),
        (
            REALM + ROLE + "permissions = [{ uri = 'a', match = 'glob' }]",
            "realms[0].roles[0].permissions[0].match: must be one of 'exact', 'prefix'",
        ),
        (
            REALM + ROLE + "permissions = [{ uri = 'a', call = 'yes' }]",
            "realms[0].roles[0].permissions[0].call: must be true or false, not a string",
        ),
        (
            REALM + ROLE + "permissions = [{ uri = 'a', admin = true }]",
            "realms[0].roles[0].permissions[0].admin: unknown key",
        ),
        (
            REALM + ROLE + "permissions = [{ uri = 'a' }, { uri = 'a', call = true }]",
            "realms[0].roles[0].permissions[1].uri: a second permission for 'a' (exact)",
        ),
        # principals
        (REALM + ROLE + "[[realms.principals]]", "realms[0].principals[0].authid: is required"),
        (
            REALM + ROLE + '[[realms.principals]]\nauthid = "a"\nticket = "t"',
            "realms[0].principals[0].role: is required",
        ),
        (
            REALM + ROLE + '[[realms.principals]]\nauthid = "a"\nrole = "admin"\nticket = "t"',
            "realms[0].principals[0].role: role 'admin' is not defined in realms[0].roles",
        ),
        (REALM + ROLE + PRINCIPAL, "realms[0].principals[0]: needs a credential: ticket, wampcra"),
        (REALM + ROLE + PRINCIPAL + "password = 'x'", "realms[0].principals[0].password: unknown"),
        (REALM + ROLE + PRINCIPAL + "ticket = ''", "realms[0].principals[0].ticket: must not be"),
        (REALM + ROLE + PRINCIPAL + "ticket = 1", "realms[0].principals[0].ticket: must be a str"),
        (
            REALM + ROLE + PRINCIPAL + "ticket = 't'\n" + PRINCIPAL + "ticket = 'u'",
            "realms[0].principals[1].authid: duplicate authid 'a'",
        ),
        (REALM + ROLE + PRINCIPAL + "wampcra = 's'", "realms[0].principals[0].wampcra: must be a"),
        (REALM + ROLE + PRINCIPAL + "wampcra = {}", "realms[0].principals[0].wampcra.secret: is"),
        (
            REALM + ROLE + PRINCIPAL + "wampcra = { secret = 's', iterations = 5 }",
            "realms[0].principals[0].wampcra.iterations: needs salt",
        ),
        (
            REALM + ROLE + PRINCIPAL + "wampcra = { secret = 's', salt = 'x', iterations = 0 }",
            "realms[0].principals[0].wampcra.iterations: must be an integer in 1..1000000, not 0",
        ),
        (
            REALM + ROLE + PRINCIPAL + "wampcra = { secret = 's', salt = 'x', keylen = 2000 }",
            "realms[0].principals[0].wampcra.keylen: must be an integer in 1..1024",
        ),
        (
            REALM + ROLE + PRINCIPAL + "wampcra = { secret = 's', salt = '' }",
            "realms[0].principals[0].wampcra.salt: must not be empty",
        ),
        (
            REALM + ROLE + PRINCIPAL + "wampcra = { secret = 's', pepper = 'x' }",
            "realms[0].principals[0].wampcra.pepper: unknown key",
        ),
        (
            REALM + ROLE + PRINCIPAL + "cryptosign = 'ab'",
            "realms[0].principals[0].cryptosign: must be an array of public keys, not a string",
        ),
        (
            REALM + ROLE + PRINCIPAL + "cryptosign = ['xyz']",
            "realms[0].principals[0].cryptosign[0]: must be an Ed25519 public key in 64 hex",
        ),
        (
            REALM + ROLE + PRINCIPAL + f"cryptosign = ['{'ab' * 32}']\n"
            '[[realms.principals]]\nauthid = "b"\nrole = "user"\n'
            f"cryptosign = ['{'AB' * 32}']",
            "realms[0].principals[1].cryptosign: public key abab",
        ),
        (REALM + ROLE + PRINCIPAL + "scram = {}", "realms[0].principals[0].scram.salt: is requi"),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = 'p', kdf = 'md5' }",
            "realms[0].principals[0].scram.kdf: must be one of 'argon2id13', 'argon2id-13', 'pb",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = 'p', salt = '00' }",
            "realms[0].principals[0].scram.salt: give either password or the derived credential",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = 'p', kdf = 'pbkdf2', memory = 8 }",
            "realms[0].principals[0].scram.memory: pbkdf2 takes no memory cost",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = 'p', iterations = 0 }",
            "realms[0].principals[0].scram.iterations: must be an integer in 1..4294967295",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = 'p', memory = 4 }",
            "realms[0].principals[0].scram.memory: must be an integer in 8..4294967295, not 4",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { password = '' }",
            "realms[0].principals[0].scram.password: must not be empty",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { salt = '00', stored-key = '00', "
            "server-key = '00', iterations = 1 }",
            "realms[0].principals[0].scram.memory: is required for kdf 'argon2id13'",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { kdf = 'pbkdf2', salt = 'zz', stored-key = '00', "
            "server-key = '00', iterations = 1 }",
            "realms[0].principals[0].scram.salt: must be hexadecimal",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { kdf = 'pbkdf2', salt = '00', stored-key = '00', "
            "server-key = '00', iterations = 1 }",
            "realms[0].principals[0].scram.stored-key: must be 32 bytes (64 hex digits)",
        ),
        (
            REALM + ROLE + PRINCIPAL + "scram = { hash = 'x' }",
            "realms[0].principals[0].scram.hash: unknown key",
        ),
        # TLS
        (
            TCP + "tls = { cert = 'c.pem', key = 'c.pem', client_cert = 'required' }",
            "listeners[0].tls.client_cert: needs ca",
        ),
        (
            TCP + "tls = { cert = 'c.pem', key = 'c.pem', ca = 'c.pem', client_cert = 'yes' }",
            "listeners[0].tls.client_cert: must be one of 'none', 'optional', 'required'",
        ),
        (
            TCP + "tls = { cert = 'c.pem', key = 'c.pem', ca = 'missing.pem' }",
            "listeners[0].tls.ca: no such file",
        ),
    ],
)
def test_auth_errors_name_the_key(toml: str, message: str, tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError) as caught:
        parse_config(toml, base=tmp_path)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_tls_client_certificates(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    config = parse_config(TCP + f"tls = {{ cert = '{cert}', key = '{key}', ca = '{cert}' }}")
    listener = config.listeners[0]
    assert isinstance(listener, TcpListener)
    assert listener.tls is not None
    assert (listener.tls.ca, listener.tls.client_cert) == (cert, "required")
    assert listener.tls.ssl_context().verify_mode == ssl.CERT_REQUIRED
    optional = TlsConfig(cert, key, ca=cert, client_cert="optional")
    assert optional.ssl_context().verify_mode == ssl.CERT_OPTIONAL
    assert TlsConfig(cert, key).ssl_context().verify_mode == ssl.CERT_NONE
    bad = TlsConfig(cert, key, "listeners[0].tls", ca=str(tmp_path / "cert.pem.missing"))
    with pytest.raises(ConfigError, match=r"^listeners\[0\]\.tls\.ca: cannot load CA"):
        bad.ssl_context()
