#!/usr/bin/env bash
# Captures the real output of the tools nos's pool-health parsers read (btrfs device stats,
# btrfs scrub status -R, btrfs filesystem show --raw) for each pool scenario below, into
# host/tests/data/health/real/<scenario>/. Run as root, from anywhere:
#
#   sudo host/tests/data/health/real/capture.sh
#
# Needs loop devices, losetup, mkfs.btrfs, btrfs, btrfs-map-logical, filefrag, dd, sha256sum.
# It re-executes itself in a private mount namespace (unshare -m --propagation private), so no
# mount it makes is ever seen by the host. Everything it makes (images, loop devices, mounts,
# btrfs-progs' scrub record /var/lib/btrfs/scrub.status.<fsid>, the scrub speed limits it sets)
# is removed again by an EXIT trap, also on failure.
#
# Nothing written here is edited by hand afterwards: rerun the script instead. See README.md.
#
# Files per scenario (a scenario holds only the files its step captured):
#   btrfs-show.txt     btrfs filesystem show --raw    (only our pool exists while it runs)
#   device-stats.json  btrfs --format json device stats <mnt>
#   scrub-status.txt   btrfs scrub status -R <mnt>
#   *.status           the exit status of the command whose output is the file of that name
#   *.stderr           what that command printed on stderr, when it printed anything
#   scrub-start.txt    what `btrfs scrub start -B <mnt>` printed (stdout), where a scrub ran
#   file-check.txt     sha256 of the known file before the scenario and after it
set -euo pipefail

if [[ ${NOS_CAPTURE_IN_NS:-} != 1 ]]; then
  [[ $(id -u) == 0 ]] || { echo "capture.sh: run as root" >&2; exit 1; }
  exec env NOS_CAPTURE_IN_NS=1 unshare -m --propagation private -- bash "$0" "$@"
fi

out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/nos-health-capture.XXXXXX)
# The pool's fsid is fixed (mkfs.btrfs -U) so that a rerun gives the same fsid as the committed
# capture (tests quote it). It differs from the facts capture's on purpose.
fsid=7e57ab1e-d15c-4a11-9b0b-5c0bb1e5ca1d
# btrfs-progs keeps each filesystem's scrub history here, outside the mount namespace.
scrub_record=/var/lib/btrfs/scrub.status.$fsid
speed_files=() # sysfs scrub_speed_max files we set (reset to 0 at the end)

loops=()  # loop devices we attached and still own
mounts=() # mount points we mounted (innermost last)

cleanup() {
  local status=$?
  set +e
  local i
  for f in "${speed_files[@]}"; do [[ -e $f ]] && echo 0 >"$f"; done
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}"; done
  for loop in "${loops[@]}"; do losetup -d "$loop"; done
  rm -f "$scrub_record"
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

[[ -e $scrub_record ]] && { echo "capture.sh: $scrub_record exists; remove it first" >&2; exit 1; }

disk() { # a fresh 1 GiB sparse loop disk, in $DISK; its image is $work/<loop name>.img
  local img="$work/disk${#loops[@]}.img"
  truncate -s 1G "$img"
  DISK=$(losetup -f --show "$img")
  loops+=("$DISK")
  ln -s "$img" "$work/${DISK#/dev/}.img"
}

mnt() { # mnt DEVICE [OPTIONS]: mount DEVICE at $work/mnt, in $MNT
  MNT="$work/mnt"
  mkdir -p "$MNT"
  mount ${2:+-o "$2"} "$1" "$MNT"
  mounts+=("$MNT")
}

unmnt() { # unmount the last mount
  umount "${mounts[-1]}"
  unset 'mounts[-1]'
}

scenario() { # scenario NAME: a fresh directory for NAME, in $DIR
  DIR="$out/$1"
  rm -rf "$DIR"; mkdir -p "$DIR"
}

run() { # run FILE CMD...: CMD's stdout into $DIR/FILE, its exit status into $DIR/FILE.status
  local file=$1 status=0; shift
  "$@" >"$DIR/$file" 2>"$DIR/${file%.*}.stderr" || status=$?
  echo "$status" >"$DIR/${file%.*}.status"
  [[ -s $DIR/${file%.*}.stderr ]] || rm "$DIR/${file%.*}.stderr"
}

show() { run btrfs-show.txt btrfs filesystem show --raw; }
stats() { run device-stats.json btrfs --format json device stats "$MNT"; }
scrub_status() { run scrub-status.txt btrfs scrub status -R "$MNT"; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

speed_limit() { # speed_limit BYTES_PER_SECOND: on every device of the pool (0 = none)
  local f
  for f in /sys/fs/btrfs/"$fsid"/devinfo/*/scrub_speed_max; do
    echo "$1" >"$f"
    speed_files+=("$f")
  done
}

main() {
  local a b c
  disk; a=$DISK; disk; b=$DISK; disk; c=$DISK
  mkfs.btrfs -q -f -U "$fsid" -d raid1 -m raid1 -L healthpool "$a" "$b" "$c"
  mnt "$a"
  # 96 MiB of data, so that a scrub limited to 4 MiB/s per device still runs for seconds.
  head -c 96M /dev/urandom >"$MNT/bulk.bin"
  # The known file the corruption scenario damages: 1 MiB, one extent.
  head -c 1M /dev/urandom >"$MNT/known.bin"
  sync
  local known_sum
  known_sum=$(sha256sum <"$MNT/known.bin" | cut -d' ' -f1)

  scenario raid1-never-scrubbed
  show; stats; scrub_status

  scenario raid1-scrubbed
  run scrub-start.txt btrfs scrub start -B "$MNT"
  stats; scrub_status

  # A scrub in the background, slowed down so that it is still running when its status is read.
  # Right after the start, btrfs-progs has no record to show yet ("no stats available").
  scenario raid1-scrub-starting
  speed_limit $((4 * 1024 * 1024))
  btrfs scrub start "$MNT" >"$DIR/scrub-start.txt"
  sleep 1
  scrub_status

  scenario raid1-scrub-running
  sleep 5
  scrub_status

  scenario raid1-scrub-cancelled
  run scrub-cancel.txt btrfs scrub cancel "$MNT"
  # The background btrfs process writes the record of the cancelled scrub as it exits; read
  # at once, `scrub status` may find the record mid-write and fail.
  sleep 1
  scrub_status

  scenario raid1-scrub-resumed
  speed_limit 0
  run scrub-resume.txt btrfs scrub resume -B "$MNT"
  scrub_status

  # Corruption: overwrite 64 KiB of one copy of known.bin's data, in one image only.
  scenario raid1-corrupted
  local logical len map physical device
  # filefrag on btrfs prints btrfs logical addresses, in blocks of 4096 bytes.
  filefrag -v "$MNT/known.bin" >"$DIR/filefrag.txt"
  logical=$(awk '$1 == "0:" { sub(/\.\./, "", $4); print $4 * 4096 }' "$DIR/filefrag.txt")
  len=$((64 * 1024))
  unmnt
  btrfs-map-logical -l "$logical" -b "$len" "$a" >"$DIR/map-logical.txt"
  map=$(grep -m1 '^mirror 1 ' "$DIR/map-logical.txt")
  physical=$(awk '{ print $6 }' <<<"$map")
  device=$(awk '{ print $8 }' <<<"$map")
  echo "corrupting $len bytes at physical $physical of $device (logical $logical, mirror 1)" \
    >"$DIR/corruption.txt"
  dd if=/dev/urandom of="$work/${device#/dev/}.img" bs=4096 seek=$((physical / 4096)) \
    count=$((len / 4096)) conv=notrunc status=none
  drop_caches
  mnt "$a"
  run scrub-start.txt btrfs scrub start -B "$MNT"
  stats; scrub_status
  echo "before $known_sum" >"$DIR/file-check.txt"
  echo "after  $(sha256sum <"$MNT/known.bin" | cut -d' ' -f1)" >>"$DIR/file-check.txt"
  unmnt

  # A missing device: detach the third loop device while the pool is unmounted.
  scenario missing-unmounted
  losetup -d "$c"
  unset 'loops[-1]' # no longer ours: `losetup -f` elsewhere may hand the number out again
  rm -f "$work/disk2.img"
  echo "$c" >"$DIR/detached.txt"
  show

  scenario missing-degraded-mount
  mnt "$a" degraded
  show; stats; scrub_status
  unmnt
}

main
