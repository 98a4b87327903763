"""The reviewers' page of an issue awaiting review, and its approve button.

    GET  /digest/review/<token>        the issue's state, the approve button, the issue below
    GET  /digest/review/<token>/copy   the issue's web copy, shown in the page's frame
    POST /digest/review/<token>        the button: approves the version shown

The token is the signed link of a proof (syndicate.digest.review): it names the issue, the
version the proof was of, and the reviewer, and counts only while that address is among
`[digest] reviewers`. The page shows the issue as it is now (a newer version than the
proof's is said so), and the button approves the version the page showed: an edit that
lands after the page was opened makes the approval fail, not approve what nobody read. The
web app records the approval only; the worker sends the issue within a minute.

Nothing about subscribers is on these pages. They are not cached, send no Referer (the
token is in the URL), and the issue's copy is served sandboxed: no script runs in it.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.digest.build import stored_content, web_copy_html
from syndicate.digest.review import (
    ReviewClaim,
    ReviewLinkError,
    describe,
    is_reviewer,
    read_review_token,
)
from syndicate.models import DigestIssue
from syndicate.tokens import signing_secret
from syndicate.web.csrf import check_csrf, csrf_token
from syndicate.web.security import SANDBOXED_COPY_POLICY
from syndicate.web.services import services

log = logging.getLogger(__name__)

REVIEW_PAGE = "web/review.html.j2"
NOT_SHARED = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
# The page frames its own /copy (the default CSP forbids frames; the copy's own policy is
# security.SANDBOXED_COPY_POLICY).
PAGE_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def routes() -> list[BaseRoute]:
    return [
        Route("/digest/review/{token}", review_page, methods=["GET"]),
        Route("/digest/review/{token}", approve, methods=["POST"]),
        Route("/digest/review/{token}/copy", review_copy, methods=["GET"]),
    ]


async def review_page(request: Request) -> Response:
    found = await _issue_of(request)
    if isinstance(found, Response):
        return found
    claim, issue = found
    return _page(request, claim, issue)


async def review_copy(request: Request) -> Response:
    found = await _issue_of(request)
    if isinstance(found, Response):
        return found
    web = services(request)
    content = await stored_content(web.settings, web.store, found[1])
    html = web_copy_html(web.settings, content, None)
    headers = {
        **NOT_SHARED,
        "Content-Security-Policy": SANDBOXED_COPY_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
    }
    return HTMLResponse(html, headers=headers)


async def approve(request: Request) -> Response:
    found = await _issue_of(request)
    if isinstance(found, Response):
        return found
    claim, issue = found
    web = services(request)
    form = await request.form()
    problem = check_csrf(request, form)
    if problem:
        log.info("review %s: refused an approval: %s", issue.period, problem)
        return _page(request, claim, issue, error="The form expired. Please try again.", status=403)
    shown = form.get("version")
    if not isinstance(shown, str) or not shown.isdigit() or int(shown) != issue.version:
        return _page(
            request,
            claim,
            issue,
            error=f"The issue changed while the page was open: this is version {issue.version}. "
            "Read it, then approve it.",
            status=409,
        )
    by = f"{claim.reviewer} (review page)"
    approved = await web.store.approve_issue(issue.id, issue.version, by, web.clock.now())
    if approved is None:
        current = await web.store.issue(issue.period) or issue
        return _page(
            request,
            claim,
            current,
            error="The issue changed meanwhile: nothing was approved.",
            status=409,
        )
    log.info("review %s: version %d approved by %s", issue.period, issue.version, claim.reviewer)
    return _page(request, claim, approved, notice="Approved. The worker sends it within a minute.")


async def _issue_of(request: Request) -> tuple[ReviewClaim, DigestIssue] | Response:
    web = services(request)
    try:
        claim = read_review_token(
            signing_secret(web.settings), web.clock, request.path_params["token"]
        )
    except ReviewLinkError as error:
        title = "This review link has expired" if error.expired else "This review link is not valid"
        return _refused(request, title, 410 if error.expired else 404)
    if not is_reviewer(web.settings.digest, claim.reviewer):
        log.info("review %s: %s is no longer a reviewer", claim.period, claim.reviewer)
        return _refused(request, "This review link is not valid", 404)
    issue = await web.store.issue(claim.period)
    if issue is None:
        return _refused(request, "This issue no longer exists", 404)
    return claim, issue


def _refused(request: Request, title: str, status: int) -> Response:
    page = services(request).pages.message(
        title,
        "Links in proofs work for their reviewers while the issue is reviewed.",
        path=request.url.path,
        status=status,
    )
    page.headers.update(NOT_SHARED)
    return page


def _page(
    request: Request,
    claim: ReviewClaim,
    issue: DigestIssue,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    web = services(request)
    settings = web.settings
    path = request.url.path.removesuffix("/")
    context = {
        "issue": {
            "period": issue.period,
            "subject": issue.subject,
            "version": issue.version,
            "awaiting": issue.awaiting_review,
            "approved_by": issue.approved_by,
            "approved_at": issue.approved_at,
            "sending": issue.snapshot_at is not None,
        },
        "state": describe(settings.digest, issue, web.clock.now(), settings.site.tz),
        "proof_version": claim.version,
        "reviewer": claim.reviewer,
        "action": request.url.path,
        "copy_url": f"{path.rsplit('/', 1)[-1]}/copy",
        "csrf_token": csrf_token(request),
        "error": error,
        "notice": notice,
    }
    headers = {**NOT_SHARED, "Content-Security-Policy": PAGE_POLICY}
    return web.pages.render(REVIEW_PAGE, context, path=path, status=status, headers=headers)
