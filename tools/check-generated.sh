#!/usr/bin/env bash
# Regenerates every file that restates upstream Kubernetes facts (protobuf tables, strict-field
# schema, patch strategies, OpenAPI documents) from the pinned upstream modules and fails on any
# difference from the checked-in copies. Needs Go and the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
go -C tools/gen-kube-facts run . -check
