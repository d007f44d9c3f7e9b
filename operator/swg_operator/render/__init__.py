"""swg_operator.render."""
