"""/admin against the real server (uvicorn on 127.0.0.1, tests/adminsite.py): off without
the setting, a plain password refused, login, the cookie's flags, its expiry, CSRF, the
lock-out and its end, and nothing about subscribers without a session.

The session cookie is `Secure`, and httpx's cookie jar (the standard library's) keeps
Secure cookies away from http:// URLs; so these tests read Set-Cookie and send the cookie
themselves (the browser test, tests/test_admin_browser.py, shows Chromium sending it to
http://127.0.0.1, which it counts as a secure context).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from adminsite import (
    PASSWORD,
    VARIABLE,
    Seeded,
    admin_config,
    log_in,
    login_form,
    running,
    session_of,
)

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.web.admingate import CLIENT_LIMIT, EVERYONE_LIMIT, LOCKOUT, SESSION_LIFETIME
from syndicate.web.app import create_app


def test_the_dashboard_is_the_sites_404_without_the_setting(
    project: Path, env: pytest.MonkeyPatch, admin_clock: FrozenClock
) -> None:
    settings = load_settings(project / "config.toml")  # admin_password_env not set
    with running(create_app(settings, clock=admin_clock)) as url, httpx.Client() as client:
        for path in ("admin", "admin/login"):
            response = client.get(f"{url}{path}")
            assert response.status_code == 404
            assert "Page not found" in response.text
        assert client.post(f"{url}admin/login", data={"password": PASSWORD}).status_code == 404


def test_a_plain_password_in_the_variable_keeps_the_dashboard_off(
    project: Path,
    env: pytest.MonkeyPatch,
    admin_clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.setenv(VARIABLE, PASSWORD)
    settings = load_settings(admin_config(project))
    with (
        caplog.at_level(logging.ERROR, logger="syndicate.web.admingate"),
        running(create_app(settings, clock=admin_clock)) as url,
        httpx.Client() as client,
    ):
        assert client.get(f"{url}admin/login").status_code == 404
        response = client.post(f"{url}admin/login", data={"password": PASSWORD})
        assert response.status_code == 404
    logged = caplog.text
    assert "the /admin dashboard is off" in logged and VARIABLE in logged
    assert "plain password is never accepted" in logged
    assert PASSWORD not in logged  # the log never repeats the value


def test_login_sets_a_strict_secure_session_cookie_and_shows_the_dashboard(site: str) -> None:
    with httpx.Client() as client:
        assert client.get(f"{site}admin").status_code == 303  # no session: to the login page
        response = log_in(client, site, PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"].endswith("admin")
        cookie = response.headers["set-cookie"]
        flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/admin"} <= flags
        assert f"max-age={int(SESSION_LIFETIME.total_seconds())}" in flags
        page = client.get(
            f"{site}admin", headers={"Cookie": f"syndicate_admin={session_of(response)}"}
        )
        assert page.status_code == 200
        assert "Subscribers over time" in page.text and "<svg" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "script-src" not in page.headers["content-security-policy"]


def test_a_wrong_password_gets_the_same_answer_and_no_cookie(site: str) -> None:
    with httpx.Client() as client:
        wrong = log_in(client, site, "correct horse battery stapler")
        empty = log_in(client, site, "")
        for response in (wrong, empty):
            assert response.status_code == 401
            assert "That password is not right." in response.text
            assert "set-cookie" not in response.headers


def test_the_session_expires(site: str, admin_clock: FrozenClock) -> None:
    with httpx.Client() as client:
        cookie = {"Cookie": f"syndicate_admin={session_of(log_in(client, site, PASSWORD))}"}
        admin_clock.advance(SESSION_LIFETIME - timedelta(minutes=1))
        assert client.get(f"{site}admin", headers=cookie).status_code == 200
        admin_clock.advance(timedelta(minutes=2))
        assert client.get(f"{site}admin", headers=cookie).status_code == 303
        forged = {
            "Cookie": "syndicate_admin=" + session_of(log_in(client, site, PASSWORD))[:-2] + "xx"
        }
        assert client.get(f"{site}admin", headers=forged).status_code == 303


def test_forms_without_or_with_a_forged_csrf_token_are_refused(site: str) -> None:
    with httpx.Client() as client:
        token = login_form(client, site)
        origin = {"Origin": site.rstrip("/")}
        missing = client.post(f"{site}admin/login", data={"password": PASSWORD}, headers=origin)
        forged = client.post(
            f"{site}admin/login",
            data={"password": PASSWORD, "csrf_token": token[:-3] + "abc"},
            headers=origin,
        )
        elsewhere = client.post(
            f"{site}admin/login",
            data={"password": PASSWORD, "csrf_token": token},
            headers={"Origin": "https://attacker.example"},
        )
        for response in (missing, forged, elsewhere):
            assert response.status_code == 403
            assert "set-cookie" not in response.headers
        # Logging out is a form too.
        cookie = session_of(log_in(client, site, PASSWORD))
        out = client.post(
            f"{site}admin/logout", headers={**origin, "Cookie": f"syndicate_admin={cookie}"}
        )
        assert out.status_code == 403
        real = client.post(
            f"{site}admin/logout",
            data={"csrf_token": login_form(client, site)},
            headers={**origin, "Cookie": f"syndicate_admin={cookie}"},
        )
        assert real.status_code == 303
        assert 'syndicate_admin=""' in real.headers["set-cookie"]
        assert "max-age=0" in real.headers["set-cookie"].lower()


def test_failed_logins_lock_the_client_out_for_a_while(site: str, admin_clock: FrozenClock) -> None:
    with httpx.Client() as client:
        for _ in range(CLIENT_LIMIT):
            assert log_in(client, site, "guess").status_code == 401
        locked = log_in(client, site, PASSWORD)  # the right one too: nothing is checked
        assert locked.status_code == 429
        assert "Too many failed logins" in locked.text
        assert int(locked.headers["retry-after"]) == int(LOCKOUT.total_seconds())
        assert "set-cookie" not in locked.headers
        # Another address is not locked out by this one's failures.
        other = log_in(client, site, PASSWORD, **{"X-Forwarded-For": "192.0.2.7"})
        assert other.status_code == 303
        admin_clock.advance(LOCKOUT + timedelta(seconds=1))
        assert log_in(client, site, PASSWORD).status_code == 303


def test_failures_from_many_addresses_lock_every_login_out(
    site: str, admin_clock: FrozenClock
) -> None:
    # uvicorn trusts X-Forwarded-For from 127.0.0.1, as behind a local proxy (web/server.py).
    with httpx.Client() as client:
        for number in range(EVERYONE_LIMIT):
            address = {"X-Forwarded-For": f"198.51.100.{number % 250}"}
            assert log_in(client, site, "guess", **address).status_code == 401
        fresh = log_in(client, site, PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
        assert fresh.status_code == 429
        admin_clock.advance(LOCKOUT + timedelta(seconds=1))
        assert log_in(client, site, PASSWORD).status_code == 303


def test_nothing_about_subscribers_without_a_session(site: str, seeded: Seeded) -> None:
    with httpx.Client() as client:
        answers = [
            client.get(f"{site}admin"),
            client.get(f"{site}admin", follow_redirects=True),
            client.get(f"{site}admin/login"),
            client.post(f"{site}admin/logout"),
            log_in(client, site, "guess"),
        ]
        for response in answers:
            body = response.text
            assert "Subscribers over time" not in body and "<svg" not in body
            assert "person" not in body and "reader.example" not in body
            assert "November news" not in body
        assert answers[1].url.path == "/admin/login"
