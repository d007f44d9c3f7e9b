"""Development tools shared by the test tiers (`tests/`, `e2e/`) and `bench/`, so that neither
tier imports the other: the cached Go-built binaries (`binaries`), the image builder behind
`make images` (`images`), the data-plane test root filesystem (`rootfs`), the SMTP relay of the
notices' tests (`smtp_relay`), and the security analysers of rendered manifests (`security`).
Nothing here is shipped in the package.
"""
