"""The data-plane benchmark (`make bench-dataplane`): Squid, c-icap and clamd from the trixie
rootfs, configured by the operator's renderer, driven with wrk inside loopback-only network
namespaces. See docs/benchmarks.md."""
