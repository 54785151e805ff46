#!/bin/bash
# Runs once at InfluxDB 2.x set-up: maps database "<bucket>" to the bucket so InfluxQL (/query)
# reads work through the v1 compatibility API.
set -euo pipefail
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx v1 dbrp create --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --rp autogen --bucket-id "$bucket_id" --default
