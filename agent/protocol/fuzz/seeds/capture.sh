#!/bin/sh
# The mountinfo seeds: this kernel's own tables, plus links to the host's captured fixtures
# (host/tests/data/facts/real/*/mountinfo.txt, captured with pools on loop devices by the
# capture script beside them). The decode seed is a real request frame (chunk-size byte, then
# twice a 4-byte big-endian length and a Run request's JSON).
set -eu
cd "$(dirname "$0")"
mkdir -p mountinfo
cp /proc/self/mountinfo mountinfo/self-mountinfo
cp /proc/swaps mountinfo/swaps
for file in ../../../../host/tests/data/facts/real/*/mountinfo.txt; do
  ln -sfn "../$file" "mountinfo/$(basename "$(dirname "$file")")-mountinfo.txt"
done
