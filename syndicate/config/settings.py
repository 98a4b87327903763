"""Typed settings, one model per section of config.toml. Defaults live here, nowhere else."""

from __future__ import annotations

import os
from datetime import timedelta
from email.utils import parseaddr
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syndicate.config.fields import (
    Address,
    CategoryName,
    Cron,
    Duration,
    EnvName,
    HttpUrl,
    IpNetwork,
    LanguageTag,
    Seconds,
    Size,
    Slug,
    TimeZoneName,
    UrlTemplate,
    VerpAddress,
    is_http_url,
)

ForumStrategy = Literal["feed", "template", "discourse", "none"]
FeedFormat = Literal["rss", "atom", "json"]


class Section(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(Section):
    title: str = Field(min_length=1)
    url: HttpUrl
    description: str = ""
    language: LanguageTag = "en"
    # The languages the site offers its readers, the first the default (issue 20); None:
    # `language` alone.
    languages: list[LanguageTag] | None = Field(default=None, min_length=1)
    timezone: TimeZoneName = "UTC"
    author: str = ""
    icon: HttpUrl | None = None
    logo: HttpUrl | None = None
    # The categories subscribers choose from, in this order. None (the key left out): every
    # category a source names or a post has (syndicate/categories.py).
    categories: list[CategoryName] | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def offered_languages(self) -> list[str]:
        """The languages offered, the default first."""
        return list(self.languages) if self.languages else [self.language]

    @field_validator("languages")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len({tag.lower() for tag in value}) != len(value):
            raise ValueError(f"a language is listed twice: {value}")
        return value


class StorageSettings(Section):
    database: str = "sqlite:///var/syndicate.db"
    # Name of an env var holding the URL instead (it may carry a password).
    database_env: EnvName | None = None

    @field_validator("database")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                f"unsupported database URL {value!r} (use sqlite:///path or "
                "postgresql+psycopg://user@host/db)"
            )
        return value


class SourceSettings(Section):
    name: Slug
    url: str
    title: str | None = None
    category: CategoryName | None = None
    every: Duration = timedelta(minutes=30)
    forum: ForumStrategy | None = None
    enabled: bool = True
    # The language of its posts, whatever the feed declares (None: the feed's, or the
    # script's for Thai, Lao, Khmer and Burmese text; syndicate/languages.py).
    language: LanguageTag | None = None

    @field_validator("url")
    @classmethod
    def _http_or_file(cls, value: str, info: ValidationInfo) -> str:
        if is_http_url(value):
            return value
        base_dir = (info.context or {}).get("base_dir", Path.cwd())
        try:
            path = local_path(value, base_dir)
        except ValueError:
            path = None  # the message below says what is accepted
        if path is None or not path.is_file():
            raise ValueError(f"not an http(s) URL or existing file: {value!r}")
        return value

    def display_title(self, feed_title: str | None = None) -> str:
        """The name the site credits the source with: its `title` in the config, else the
        title its feed gave (`feed_title`, from the store), else its `name`."""
        return self.title or feed_title or self.name


class CategorySettings(Section):
    """[categories.<name>]: the feed tags that put a post in the site category <name>."""

    tags: list[CategoryName] = Field(default_factory=list)


class DiscourseSettings(Section):
    url: HttpUrl
    api_key_env: EnvName = "DISCOURSE_API_KEY"
    api_username: str = "system"
    category: int | None = None
    refresh_replies: bool = True


class ForumSettings(Section):
    strategy: ForumStrategy = "feed"
    url_template: UrlTemplate | None = None
    discourse: DiscourseSettings | None = None


class IngestSettings(Section):
    concurrency: int = Field(default=16, ge=1, le=512)
    connect_timeout: Seconds = 10.0
    read_timeout: Seconds = 30.0
    total_timeout: Seconds = 120.0  # a whole fetch, however it trickles
    max_size: Size = 10_000_000
    max_redirects: int = Field(default=5, ge=0, le=20)
    workers: int = Field(default=0, ge=0, le=64)  # parser processes; 0 = one per core, 1 = none
    parse_cpu_limit: int = Field(default=60, ge=1, le=3600)  # CPU seconds to parse one feed
    # Redirects may lead to loopback, private or link-local addresses (other than a source's
    # own configured host and port) only when this is set.
    allow_private: bool = False


class PublishSettings(Section):
    dir: str = "feeds"
    formats: list[FeedFormat] = Field(default_factory=lambda: ["rss", "atom", "json"], min_length=1)
    items: int = Field(default=50, ge=1, le=10_000)
    ttl: Duration = timedelta(minutes=60)
    websub_hub: HttpUrl | None = None


class DigestSettings(Section):
    schedule: Cron = "0 9 1 * *"
    period: Literal["month", "week"] = "month"
    subject: str = "{{ site.title }}: {{ period.label }}"
    sender: Address = Field(default="newsletter@example.org", alias="from")
    reply_to: Address | None = None
    skip_empty: bool = True
    group_by: Literal["category", "source", "none"] = "category"
    order: Literal["newest", "oldest"] = "newest"
    max_posts: int = Field(default=30, ge=1, le=1000)
    # On a site of several languages, what a reader gets of the posts in languages other
    # than theirs: the posts in full, their titles as links, or nothing (issue 20). Nothing
    # by default: a reader is sent what they can read, and an English reader's digest is
    # what it was before the site had other languages.
    other_languages: Literal["include", "link", "omit"] = "omit"
    # A welcome email once someone confirms (templates/email/welcome.*.j2). Strict: a
    # quoted "false" is a mistake to report, not a truthy string.
    welcome: StrictBool = True
    # Proof and approval (issue 21): with `review` set, an issue is first sent as a proof to
    # `reviewers` and goes out when approved (`digest approve`, or the button on the signed
    # preview), or when the window ends, as `unreviewed` says. "off" or absent: no review.
    review: Duration | None = None
    reviewers: list[Address] = Field(default_factory=list)
    unreviewed: Literal["send", "hold"] = "hold"

    @field_validator("review", mode="before")
    @classmethod
    def _review_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("off", "none", ""):
            return None
        if value is False:
            return None
        return value

    @field_validator("reviewers")
    @classmethod
    def _distinct_reviewers(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for reviewer in value:
            address = parseaddr(reviewer)[1].casefold()
            if address in seen:
                raise ValueError(f"a reviewer is listed twice: {reviewer!r}")
            seen.add(address)
        return value

    @model_validator(mode="after")
    def _reviewers_for_review(self) -> DigestSettings:
        if self.review is not None and not self.reviewers:
            raise ValueError(
                "review is on but reviewers is empty: list who reads the proof, "
                'e.g. reviewers = ["editor@example.org"], or set review = "off"'
            )
        return self


class SmtpSettings(Section):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password_env: EnvName | None = None
    pool: int = Field(default=4, ge=1, le=256)
    # Messages per second, 0 = unlimited; finite (inf is not "unlimited").
    rate: float = Field(default=0.0, ge=0, le=100_000, allow_inf_nan=False)
    timeout: Seconds = 30.0


class DkimSettings(Section):
    domain: str
    selector: str
    private_key_env: EnvName = "DKIM_PRIVATE_KEY"


class MailSettings(Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: str = "var/outbox"
    # A delivery that failed transiently (4xx, timeout) is tried again after retry_backoff,
    # doubling each time, and fails for good after max_attempts tries in all.
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_backoff: Duration = timedelta(minutes=2)
    # Permanent refusals (5xx) of a subscriber's address before they are marked bounced.
    bounce_limit: int = Field(default=3, ge=1, le=100)
    smtp: SmtpSettings = SmtpSettings()
    dkim: DkimSettings | None = None
    # Where bounces go: each copy's envelope sender (MAIL FROM) becomes
    # "<local>+<signed token>@<domain>" of this address (VERP), naming the issue and the
    # subscriber (syndicate/returnpath.py). None: the address of [digest] from, and bounces
    # are matched by the Message-ID they quote.
    return_path: VerpAddress | None = None
    # The mailto: of List-Unsubscribe, "<local>+<signed token>@<domain>" of this address,
    # for mail that `syndicate bounces process` or [bounces.imap] reads. None: no mailto.
    unsubscribe_mailbox: VerpAddress | None = None


class ImapSettings(Section):
    """[bounces.imap]: a mailbox the worker polls for bounces, complaints and unsubscribes."""

    host: str
    port: int | None = Field(default=None, ge=1, le=65535)  # None: 993, or 143 without TLS
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    username: str
    password_env: EnvName = "SYNDICATE_IMAP_PASSWORD"  # noqa: S105 (a variable name)
    folder: str = "INBOX"
    # What happens to a message once its outcome is stored: moved to `processed_folder`
    # (created when missing) or deleted.
    processed: Literal["move", "delete"] = "move"
    processed_folder: str = "Processed"
    timeout: Seconds = 30.0
    batch: int = Field(default=200, ge=1, le=10_000)  # messages a poll reads at most

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.tls == "implicit" else 143)


class BounceSettings(Section):
    """[bounces]: what a bounce report or a complaint does to a subscriber."""

    # Hard bounces (5.x.x, Action: failed) reported for an address before it is marked
    # bounced; soft ones (4.x.x, delayed) count only within soft_window.
    hard_limit: int = Field(default=1, ge=1, le=100)
    soft_limit: int = Field(default=3, ge=1, le=100)
    soft_window: Duration = timedelta(days=30)
    every: Duration = timedelta(minutes=10)  # how often `syndicate run` polls [bounces.imap]
    keep: str = "var/bounces"  # a Maildir that keeps the mail that could not be read
    imap: ImapSettings | None = None


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_env: EnvName = "SYNDICATE_SECRET"  # noqa: S105 (a variable name, not a secret)
    # Seconds a client has to send a whole request (headers and body), and an idle kept-alive
    # connection stays open; slower or idler clients are cut off (web/connections.py).
    request_timeout: float = Field(default=10.0, gt=0, le=600)
    keepalive_timeout: float = Field(default=5.0, gt=0, le=600)
    max_connections: int = Field(default=512, ge=1, le=100_000)
    # Who may read /metrics: client networks, and/or a bearer token from this env var.
    metrics_allow: list[IpNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    metrics_token_env: EnvName | None = None
    # The /admin dashboard: off unless this names a variable holding an argon2 or scrypt
    # hash of its password (syndicate/passwords.py; `syndicate admin hash-password`).
    admin_password_env: EnvName | None = None


class Settings(Section):
    """The whole config file, plus where it was read from (to resolve relative paths)."""

    site: SiteSettings
    storage: StorageSettings = StorageSettings()
    ingest: IngestSettings = IngestSettings()
    sources: list[SourceSettings] = Field(default_factory=list)
    categories: dict[str, CategorySettings] = Field(default_factory=dict)
    forum: ForumSettings = ForumSettings()
    publish: PublishSettings = PublishSettings()
    digest: DigestSettings = DigestSettings()
    mail: MailSettings = MailSettings()
    bounces: BounceSettings = BounceSettings()
    web: WebSettings = WebSettings()
    path: Path = Field(default=Path("config.toml"), exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.base_dir / Path(path).expanduser()).resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, env var override applied, SQLite paths made absolute."""
        url = self.storage.database
        if self.storage.database_env and os.environ.get(self.storage.database_env):
            url = os.environ[self.storage.database_env]
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url.removeprefix("sqlite:///")
            if relative and relative != ":memory:":
                url = f"sqlite:///{self.resolve(relative)}"
        return url

    @property
    def publish_dir(self) -> Path:
        return self.resolve(self.publish.dir)

    @property
    def outbox_dir(self) -> Path:
        return self.resolve(self.mail.outbox)

    @property
    def bounces_keep_dir(self) -> Path:
        return self.resolve(self.bounces.keep)

    @property
    def templates_dir(self) -> Path:
        return self.base_dir / "templates"

    @property
    def locales_dir(self) -> Path:
        """The templates' translations (syndicate.i18n): beside the templates, since admins
        who change one change the other."""
        return self.base_dir / "locales"

    def source(self, name: str) -> SourceSettings | None:
        return next((source for source in self.sources if source.name == name), None)


def local_path(url: str, base_dir: Path | None = None) -> Path | None:
    """The file a source URL names, or None for an http(s) URL: the one rule for the config
    (which checks the file exists) and the fetcher (which reads it).

    A file: URL names a file on this machine; a path is relative to `base_dir` (`~` is
    expanded), or must be absolute without one. Raises ValueError, saying why, for a file:
    URL on another host, another scheme, or a relative path without `base_dir`.
    """
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from None
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"cannot fetch a file on another host: {url}")
        return Path(unquote(parts.path))
    if len(parts.scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url}")
    if base_dir is not None:
        return (base_dir / Path(url).expanduser()).resolve()
    path = Path(url)
    if not path.is_absolute():
        raise ValueError(f"relative path {url!r} (it must be resolved before fetching)")
    return path


def secret(env_name: str | None) -> str | None:
    """Read a secret from the environment variable the config names; None when unset."""
    if not env_name:
        return None
    return os.environ.get(env_name) or None
