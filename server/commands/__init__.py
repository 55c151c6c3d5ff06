"""Subcommands of `hearth` beyond `serve`: one module per feature, each with `register(commands)`."""
