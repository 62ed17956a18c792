#!/bin/sh
# The seeds are the captured real fixtures (host/tests/data/*/real, each with its own capture
# script), linked rather than copied so there is one copy of each. Re-run after a new capture.
set -eu
cd "$(dirname "$0")"
link() { # target file-name-in-fixture
  mkdir -p "$1"
  for file in ../../tests/data/*/real/*/"$2"; do
    [ -e "$file" ] || continue
    case_name=$(basename "$(dirname "$file")")
    ln -sfn "../$file" "$1/$case_name-$2"
  done
}
link lsblk lsblk-tree.json
link lsblk lsblk-list.json
link blkid blkid-p
link btrfs_show btrfs-show.txt
link scrub_status scrub-status.txt
link device_stats device-stats.json
