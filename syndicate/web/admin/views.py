"""The /admin routes: log in, look, log out. Read-only: configuration stays in config.toml.

    GET  /admin          the dashboard (a session), else a redirect to the login page
    GET  /admin/login    the login form
    POST /admin/login    password, csrf_token -> the session cookie and the dashboard
    POST /admin/logout   csrf_token -> the cookie deleted
    POST /admin/approve  period, version, csrf_token -> that version of an issue awaiting
                         review approved (syndicate/digest/review.py); the worker sends it
    GET  /admin/issue/<period>   the issue's copy, sandboxed, framed on the dashboard

Off (every /admin address is the site's 404) unless `[web] admin_password_env` names a
variable holding a password hash (web/admingate.py, syndicate/passwords.py). Every POST
passes `admin_post` first: the dashboard on, then CSRF (csrf.py: Origin or Referer, and the
signed token), then, for anything but the login itself, a session. A new form on the
dashboard (the approve button of an issue awaiting review) posts through it:

    async def approve(request: Request) -> Response:
        form = await admin_post(request)
        if isinstance(form, Response):
            return form          # 404, 403 or the login page: nothing was done
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.digest.build import stored_content, web_copy_html
from syndicate.digest.review import describe
from syndicate.web.admin import panels
from syndicate.web.admingate import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    AdminGate,
)
from syndicate.web.csrf import FIELD, check_csrf, csrf_token
from syndicate.web.security import SANDBOXED_COPY_POLICY
from syndicate.web.services import services

log = logging.getLogger(__name__)

# Pages with the dashboard's numbers, or its forms, are kept by nobody and never indexed;
# the Referer of a link from them names only this site.
PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}
PASSWORD_MAX = 1024  # characters; argon2 would take longer ones, nobody types them


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", dashboard, methods=["GET", "HEAD"]),
        Route("/admin/login", login, methods=["GET", "HEAD", "POST"]),
        Route("/admin/logout", logout, methods=["POST"]),
        Route("/admin/approve", approve, methods=["POST"]),
        Route("/admin/issue/{period}", issue_copy, methods=["GET"]),
    ]


def gate(request: Request) -> AdminGate:
    """The gate, or the site's 404 when the dashboard is off."""
    found = services(request).admin
    if found is None:
        raise HTTPException(404)
    return found


def logged_in(request: Request) -> bool:
    return gate(request).session_valid(request.cookies.get(SESSION_COOKIE))


def form_fields(request: Request) -> dict[str, str]:
    """What every admin form's template needs: `{{ csrf_field }}` and `{{ csrf_token }}`."""
    return {"csrf_field": FIELD, "csrf_token": csrf_token(request)}


async def admin_post(request: Request, *, session: bool = True) -> FormData | Response:
    """The form of a POST to /admin/..., or the answer when it must not be acted on: the
    404 when the dashboard is off, 403 when the CSRF check fails, the login page when
    `session` is wanted and there is none (see the module docstring)."""
    admin = gate(request)
    form = await request.form()
    problem = check_csrf(request, form)
    if problem:
        log.warning("admin: refused a form from %s: %s", client(request), problem)
        return render_login(
            request,
            error="The form had expired or was not sent from this site. Try again.",
            status=403,
        )
    if session and not admin.session_valid(request.cookies.get(SESSION_COOKIE)):
        return render_login(request, error="Please log in.", status=401)
    return form


async def dashboard(request: Request) -> Response:
    if not logged_in(request):
        return RedirectResponse(_link(request, "/admin/login"), status_code=303, headers=PRIVATE)
    web = services(request)
    now = web.clock.now()
    issues_chart, issues = await panels.issues_chart(web.store)
    sources_chart, sources = await panels.sources_chart(web.store)
    queue_chart, queue = await panels.queue_chart(web.store)
    context: dict[str, Any] = {
        "title": "Dashboard",
        "now": panels.when(now),
        "subscribers_chart": await panels.subscribers_chart(web.store, now),
        "issues_chart": issues_chart,
        "issues": issues,
        "sources_chart": sources_chart,
        "sources": sources,
        "queue_chart": queue_chart,
        "next_retry": panels.when(queue.next_retry_at),
        "awaiting_review": await _awaiting_review(request),
        "approved": await _just_approved(request),
        **form_fields(request),
    }
    return _render(request, "web/admin/dashboard.html.j2", context)


async def _awaiting_review(request: Request) -> list[dict[str, Any]]:
    web = services(request)
    settings, now = web.settings, web.clock.now()
    return [
        {
            "period": issue.period,
            "subject": issue.subject,
            "version": issue.version,
            "state": describe(settings.digest, issue, now, settings.site.tz),
        }
        for issue in await web.store.issues_awaiting_review()
    ]


async def _just_approved(request: Request) -> dict[str, Any] | None:
    """The issue named by ?approved= after an approval, if it is approved: from the
    database, never the parameter's own text."""
    period = request.query_params.get("approved", "")
    issue = await services(request).store.issue(period[:16]) if period else None
    if issue is None or issue.approved_at is None:
        return None
    return {"period": issue.period, "version": issue.version, "by": issue.approved_by}


async def approve(request: Request) -> Response:
    """The approve button of an issue awaiting review: records the approval of the version
    the dashboard showed (an issue rebuilt since is not approved by it); the worker sends."""
    form = await admin_post(request)
    if isinstance(form, Response):
        return form
    web = services(request)
    period, shown = form.get("period"), form.get("version")
    issue = await web.store.issue(period) if isinstance(period, str) else None
    if issue is None or not isinstance(shown, str) or not shown.isdigit():
        raise HTTPException(400)
    by = f"admin dashboard ({client(request)})"
    approved = await web.store.approve_issue(issue.id, int(shown), by, web.clock.now())
    if approved is None:
        log.info("admin: %s version %s not approved: it changed", issue.period, shown)
        return RedirectResponse(_link(request, "/admin"), status_code=303, headers=PRIVATE)
    log.info("admin: %s version %d approved by %s", issue.period, approved.version, by)
    target = _link(request, f"/admin?approved={approved.period}")
    return RedirectResponse(target, status_code=303, headers=PRIVATE)


async def issue_copy(request: Request) -> Response:
    """An issue's web copy as it would be published, for an admin to read before approving."""
    if not logged_in(request):
        return RedirectResponse(_link(request, "/admin/login"), status_code=303, headers=PRIVATE)
    web = services(request)
    issue = await web.store.issue(request.path_params["period"][:16])
    if issue is None:
        raise HTTPException(404)
    html = web_copy_html(web.settings, await stored_content(web.settings, web.store, issue), None)
    headers = {
        **PRIVATE,
        "Content-Security-Policy": SANDBOXED_COPY_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
    }
    return HTMLResponse(html, headers=headers)


async def login(request: Request) -> Response:
    admin = gate(request)
    if request.method != "POST":
        if logged_in(request):
            return RedirectResponse(_link(request, "/admin"), status_code=303, headers=PRIVATE)
        return render_login(request)
    form = await admin_post(request, session=False)
    if isinstance(form, Response):
        return form
    who = client(request)
    wait = admin.locked_out(who)
    if wait is not None:
        log.warning("admin: login from %s refused: locked out for %d s more", who, wait)
        minutes = max(1, -(-wait // 60))
        response = render_login(
            request,
            error=f"Too many failed logins. Try again in {minutes} minute"
            f"{'' if minutes == 1 else 's'}.",
            status=429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    password = form.get("password")
    typed = password if isinstance(password, str) else ""
    if not typed or len(typed) > PASSWORD_MAX or not await admin.verify(typed):
        admin.failed(who)
        log.warning("admin: failed login from %s", who)
        return render_login(request, error="That password is not right.", status=401)
    admin.succeeded(who)
    log.info("admin: logged in from %s", who)
    response = RedirectResponse(_link(request, "/admin"), status_code=303, headers=PRIVATE)
    response.set_cookie(
        SESSION_COOKIE,
        admin.new_session(),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    form = await admin_post(request, session=False)
    if isinstance(form, Response):
        return form
    response = RedirectResponse(_link(request, "/admin/login"), status_code=303, headers=PRIVATE)
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


def render_login(request: Request, *, error: str = "", status: int = 200) -> Response:
    context = {"title": "Log in", "error": error, **form_fields(request)}
    return _render(request, "web/admin/login.html.j2", context, status=status)


def client(request: Request) -> str:
    # The peer, or X-Forwarded-For from a proxy on 127.0.0.1 (web/server.py); for logs and
    # the lock-out's count.
    return request.client.host if request.client else "unknown"


def _render(
    request: Request, name: str, context: Mapping[str, Any], *, status: int = 200
) -> Response:
    web = services(request)
    return web.pages.render(name, context, path=request.url.path, status=status, headers=PRIVATE)


def _link(request: Request, target: str) -> str:
    return services(request).pages.link(request.url.path, target)
