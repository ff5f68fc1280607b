#!/usr/bin/env bash
# Installs what the tests need on a fresh machine. Today that is only the Rust
# toolchain (already on the machine) and a C compiler for SQLite's bundled build; later
# suites add PostgreSQL, an S3-compatible server and a Kafka-protocol broker here.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  echo "cargo is required (install Rust with rustup)" >&2
  exit 1
fi
if ! need cc; then
  echo "== installing a C compiler"
  apt-get update -qq && apt-get install -y -qq build-essential
fi
