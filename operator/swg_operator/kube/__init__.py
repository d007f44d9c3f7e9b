"""swg_operator.kube."""
