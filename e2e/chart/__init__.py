"""The Helm chart on a real API server, as a platform team installs it, and the operator running
with nothing but the chart's ServiceAccount.

On the local control plane the chart gets a control plane of its own (started by this package):
its release owns cluster-wide objects (the CRD, ClusterRoles) and the
operator it runs reconciles every tenant it sees, so sharing the session's cluster with other
modules would let each disturb the other. Pods are simulated by kwok there: the operator image
never runs, so the operator runs as a local process authenticated with a token of the chart's
ServiceAccount, which proves the chart's RBAC sufficient.

On an external cluster ($SWG_E2E_KUBECONFIG, e.g. kind through hack/e2e-kind.sh) the chart is
installed in its own release; the tests that need the operator itself use the release named by
$SWG_E2E_CHART_RELEASE ("namespace/name", installed by hack/e2e-kind.sh with real images) and
are skipped without it.

The fixtures (conftest.py) are shared by the package's modules: one control plane and one
release for all of them, torn down after the last (test_chart_uninstall.py ends the release).
Each test waits for the tenants it made to be purged before it ends, so none sees another's.
"""
