#!/usr/bin/env bash
# Captures the real output of `btrfs subvolume list -p -u -q -- <pool>` (the subvolume fact the
# shares and snapshots planners read) on a pool with shares, snapshot containers, read-only
# snapshots and a restored share, into this directory. Run as root:
#
#   sudo host/tests/data/facts/subvolumes/capture.sh
#
# It re-executes itself in a private mount namespace; the image, loop device and mount are
# removed by an EXIT trap, also on failure. Nothing written here is edited by hand afterwards.
#
# Files:
#   list.txt         btrfs subvolume list -p -u -q -- <pool>
#   list-empty.txt   the same on a fresh pool with no subvolume
#   version.txt      btrfs --version
set -euo pipefail
if [[ "${NOS_CAPTURE_NS:-}" != 1 ]]; then
    exec env NOS_CAPTURE_NS=1 unshare -m --propagation private "$0" "$@"
fi
out="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
loop=""
cleanup() {
    umount "$work/pool" 2>/dev/null || true
    [[ -n "$loop" ]] && losetup -d "$loop" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
truncate -s 1G "$work/disk.img"
loop="$(losetup --find --show "$work/disk.img")"
mkfs.btrfs -q -f -L tank "$loop" >/dev/null
mkdir "$work/pool"
mount -t btrfs "$loop" "$work/pool"
pool="$work/pool"
btrfs subvolume list -p -u -q -- "$pool" > "$out/list-empty.txt"
btrfs subvolume create -- "$pool/media" >/dev/null
btrfs subvolume create -- "$pool/docs" >/dev/null
echo one > "$pool/media/a.txt"
btrfs subvolume create -- "$pool/.snapshots" >/dev/null
btrfs subvolume create -- "$pool/.snapshots/media" >/dev/null
btrfs subvolume snapshot -r -- "$pool/media" "$pool/.snapshots/media/20261202T190000Z" >/dev/null
btrfs subvolume snapshot -r -- "$pool/media" "$pool/.snapshots/media/20261202T200000Z-hourly" >/dev/null
btrfs subvolume snapshot -- "$pool/.snapshots/media/20261202T190000Z" "$pool/media-restored" >/dev/null
btrfs subvolume list -p -u -q -- "$pool" > "$out/list.txt"
btrfs --version > "$out/version.txt"
