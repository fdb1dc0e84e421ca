"""Core subcommands of the `panopticon` CLI (see `panopticon.cli`)."""
