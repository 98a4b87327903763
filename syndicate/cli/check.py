"""`syndicate check`: validate the config and say what it will do."""

from __future__ import annotations

import click

from syndicate.cli.app import AppContext, cli, pass_app
from syndicate.errors import ConfigError, TemplateError

# What the /admin dashboard renders (syndicate/web/admin/views.py).
ADMIN_TEMPLATES = ("base.html.j2", "chart.html.j2", "dashboard.html.j2", "login.html.j2")


@cli.command()
@pass_app
def check(app: AppContext) -> None:
    """Validate the config file and print a short summary.

    Also renders every email (digest, confirmation, welcome) and archive page template with
    sample data. With the /admin dashboard on, its password variable must hold a hash, not a
    password, and its templates must be there. Exits 0 when the config is usable, 2 with
    one line per problem when it is not (file, key path or template line, and what is
    wrong).

    \b
    Example:
      syndicate --config /etc/syndicate/config.toml check
    """
    from syndicate.config import missing_secrets, secret
    from syndicate.digest.build import renderer_for
    from syndicate.i18n import catalog_file
    from syndicate.languages import primary
    from syndicate.mail.confirm import ConfirmRenderer
    from syndicate.mail.welcome import WelcomeRenderer
    from syndicate.passwords import admin_password
    from syndicate.publish.pages import PageRenderer
    from syndicate.summary import describe

    settings = app.settings
    pages = PageRenderer(settings.templates_dir, formats=settings.publish.formats)
    confirmation = ConfirmRenderer(settings.templates_dir, settings.locales_dir)
    welcome = WelcomeRenderer(settings.templates_dir, settings.locales_dir)
    # dict.fromkeys: the digest's check compiles every email template, the confirmation
    # email's among them, so a syntax error there would otherwise be listed twice.
    problems = list(
        dict.fromkeys(
            renderer_for(settings).check() + confirmation.check() + welcome.check() + pages.check()
        )
    )
    if problems:
        raise TemplateError("\n".join(problems))
    dashboard = admin_password(settings)
    if dashboard.problem and secret(settings.web.admin_password_env) is not None:
        # A plain password in the variable: the dashboard stays off, and it must not stay
        # there (an unset variable is only a warning, below).
        raise ConfigError([f"{app.config_file}: {dashboard.problem}"])
    if dashboard.hash:
        # A site whose templates/ was copied from a release before the dashboard.
        missing = [
            f"templates/web/admin/{name}: missing (copy templates/web/admin/ from syndicate's "
            "release: the /admin dashboard needs it)"
            for name in ADMIN_TEMPLATES
            if not (settings.templates_dir / "web" / "admin" / name).is_file()
        ]
        if missing:
            raise TemplateError("\n".join(missing))
    click.echo(f"{app.config_file}: OK")
    for label, value in describe(settings, app.clock.now()):
        click.echo(f"  {label:<10} {value}")
    for warning in missing_secrets(settings):
        click.echo(f"warning: {app.config_file}: {warning}", err=True)
    for language in settings.site.offered_languages:
        if primary(language) != "en" and catalog_file(settings.locales_dir, language) is None:
            click.echo(
                f"warning: {app.config_file}: [site] languages: no catalog for {language!r} "
                f"in {settings.locales_dir}: its readers get the English words "
                "(README, Translating)",
                err=True,
            )
