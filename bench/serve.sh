#!/usr/bin/env bash
# amber through `amber serve` (HTTPS on 127.0.0.1) beside amber on a local disk and on moto's
# S3 server: same corpus, same run (bench/backends.sh does the work).
#
#   bash bench/serve.sh                     # corpus from bench/run.sh (/tmp/bench/corpus)
#   CORPUS=/some/tree BACKENDS="local serve" bash bench/serve.sh
exec env BACKENDS="${BACKENDS:-local serve s3}" NAME=serve bash "$(dirname "${BASH_SOURCE[0]}")/backends.sh"
