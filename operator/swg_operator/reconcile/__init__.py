"""swg_operator.reconcile."""
