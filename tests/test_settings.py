"""Settings: one dataclass, read from COURSE_* variables, validated on creation."""

from __future__ import annotations

import pytest

from course_server import Settings


def test_defaults_match_the_spec() -> None:
    settings = Settings()
    assert settings.redis_url == ""
    assert dict(settings.demo_users) == {"alice": "wonderland", "bob": "builder"}
    assert settings.auth_timeout == 5
    assert settings.allowed_origins == ()
    assert settings.history_size == 50
    assert settings.max_message_bytes == 65536
    assert settings.rate_limit == 20


def test_each_default_secret_is_random() -> None:
    assert Settings().jwt_secret != Settings().jwt_secret


def test_from_env_reads_every_variable() -> None:
    env = {
        "COURSE_REDIS_URL": "redis://127.0.0.1:6390/0",
        "COURSE_JWT_SECRET": "s3cret",
        "COURSE_DEMO_USERS": "carol:pw1, dave:pw2",
        "COURSE_AUTH_TIMEOUT": "0.5",
        "COURSE_TOKEN_LIFETIME": "60",
        "COURSE_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "COURSE_HISTORY_SIZE": "7",
        "COURSE_MAX_MESSAGE_BYTES": "1024",
        "COURSE_RATE_LIMIT": "0",
        "COURSE_SEND_QUEUE_SIZE": "8",
        "COURSE_WS_PING_INTERVAL": "0",
        "COURSE_WS_PING_TIMEOUT": "3",
        "COURSE_WS_DEFLATE": "on",
        "COURSE_LOG_LEVEL": "debug",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        redis_url="redis://127.0.0.1:6390/0",
        jwt_secret="s3cret",
        demo_users={"carol": "pw1", "dave": "pw2"},
        auth_timeout=0.5,
        token_lifetime=60,
        allowed_origins=("https://a.example", "https://b.example"),
        history_size=7,
        max_message_bytes=1024,
        rate_limit=0,
        send_queue_size=8,
        ws_ping_interval=0,
        ws_ping_timeout=3,
        ws_deflate=True,
        log_level="debug",
    )


def test_keyword_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"COURSE_REDIS_URL": "redis://a"}, redis_url="redis://b")
    assert settings.redis_url == "redis://b"


def test_none_overrides_are_ignored() -> None:
    assert Settings.from_env({"COURSE_REDIS_URL": "redis://a"}, redis_url=None).redis_url == (
        "redis://a"
    )


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="COURSE_HISTORY_SIZE='many'"):
        Settings.from_env({"COURSE_HISTORY_SIZE": "many"})


def test_bad_demo_users_entry_is_explained() -> None:
    with pytest.raises(ValueError, match="name:password"):
        Settings.from_env({"COURSE_DEMO_USERS": "alice"})


@pytest.mark.parametrize(
    "field",
    [
        "auth_timeout",
        "token_lifetime",
        "max_message_bytes",
        "send_queue_size",
        "ws_ping_timeout",
    ],
)
def test_non_positive_values_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Settings(**{field: 0})


def test_a_bad_flag_names_the_variable() -> None:
    with pytest.raises(ValueError, match="COURSE_WS_DEFLATE='maybe'"):
        Settings.from_env({"COURSE_WS_DEFLATE": "maybe"})


def test_login_throttle_and_cookie_defaults_match_the_spec() -> None:
    settings = Settings()
    assert (settings.login_max_failures, settings.login_window) == (5, 60)
    assert settings.login_concurrency == 2
    assert settings.cookie_secure == "auto"


def test_login_throttle_and_cookie_settings_are_read_from_the_environment() -> None:
    env = {
        "COURSE_LOGIN_MAX_FAILURES": "3",
        "COURSE_LOGIN_WINDOW": "0.5",
        "COURSE_LOGIN_CONCURRENCY": "1",
        "COURSE_COOKIE_SECURE": "true",
    }
    settings = Settings.from_env(env)
    assert (settings.login_max_failures, settings.login_window) == (3, 0.5)
    assert (settings.login_concurrency, settings.cookie_secure) == (1, "true")


@pytest.mark.parametrize("field", ["login_max_failures", "login_window", "login_concurrency"])
def test_login_throttle_numbers_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Settings(**{field: 0})
