//! `nautilus-proxy`: the untrusted host proxy.

fn main() {}
