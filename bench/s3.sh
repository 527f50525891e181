#!/usr/bin/env bash
# amber on S3 (moto's server and Ceph RGW 16.2, on 127.0.0.1) beside amber on a local disk:
# same corpus, same run (bench/backends.sh does the work).
#
#   bash bench/s3.sh            # corpus from bench/run.sh (/tmp/bench/corpus)
#   BACKENDS="local rgw" bash bench/s3.sh
exec env BACKENDS="${BACKENDS:-local s3 rgw}" NAME=s3 bash "$(dirname "${BASH_SOURCE[0]}")/backends.sh"
