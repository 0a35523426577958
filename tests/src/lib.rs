//! Shared harness for the end-to-end tests: starts the real binaries on loopback.
