"""`swg-operator` subcommands, one module each (see `swg_operator.cli`)."""
