"""swg_operator.api."""
