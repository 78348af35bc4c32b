"""The router's TOML configuration: every key, every error."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from wamp_trio._config import (
    DEFAULT_CONFIG,
    MAX_MESSAGE_SIZE,
    ConfigError,
    Limits,
    RealmConfig,
    RouterConfig,
    TcpListener,
    TlsConfig,
    UnixListener,
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
        ('[[realms]]\nname = "a"\nroles = {}', "realms[0].roles: unknown key"),
        (TCP + "tls_cert = 'x'", "listeners[0].tls_cert: unknown key"),
        ('[[listeners]]\ntype = "unix"\npath = "x"\nhost = "h"', "listeners[0].host: unknown"),
        (TCP + "tls = { cert = 'a', key = 'b', ca = 'c' }", "listeners[0].tls.ca: unknown key"),
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
    doc = (Path(__file__).parents[2] / "docs" / "router.md").read_text()
    keys: dict[str, Any] = {
        "router": ["auto_create_realms", "strict_request_ids", "shutdown_timeout"],
        "realms": ["name"],
        "listeners": ["type", "host", "port", "websocket", "longpoll", "rawsocket", "tls", "path"],
        "tls": ["cert", "key"],
        "limits": ["queue_size", "slow_consumer", "max_message_size"],
        "logging": ["level"],
    }
    for section, names in keys.items():
        assert section in doc
        for name in names:
            assert f"`{name}`" in doc, name
