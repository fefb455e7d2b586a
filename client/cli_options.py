"""Click options for reaching workers, shared by every subcommand that calls one; generated from
`ClientSettings`, so a flag, its variable, its default and its help come from one place."""

from __future__ import annotations

import click

from crossrank.client.settings import ClientSettings

WORKER_SETTINGS = ("worker_target", "auth_token", "tls_ca", "timeout")

# --target, --token, --ca-cert and --timeout; the command gets `settings` (a ClientSettings).
worker_options = ClientSettings.options(*WORKER_SETTINGS)

wait_for_worker_option = click.option(
    "--wait-for-worker", is_flag=True,
    help="When no worker answers, keep trying until --timeout instead of failing after 2 s.")

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


class Group(click.Group):
    """A command group whose listing shows each command's first sentence in full, wrapped to the
    terminal, where click would cut it short with '...'."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
