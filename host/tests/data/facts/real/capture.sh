#!/usr/bin/env bash
# Captures the real output of the tools nos's fact parsers read, for each disk scenario below,
# into host/tests/data/facts/real/<scenario>/. Run as root, from anywhere:
#
#   sudo host/tests/data/facts/real/capture.sh
#
# Needs loop devices, losetup, partx, sfdisk, mkfs.ext4, mkfs.btrfs, mkswap, swapon,
# cryptsetup, mdadm (mkfs.vfat and mcopy optional). It re-executes itself in a private mount namespace
# (unshare -m --propagation private), so no mount it makes is ever seen by the host. Everything
# it makes (images, loop devices, partition nodes, mounts, active swap, md arrays and the md
# device nodes mdadm creates) is removed again by an EXIT trap, also on failure.
#
# Nothing written here is edited by hand afterwards: rerun the script instead. See README.md.
#
# Files per scenario:
#   devices.txt      the scenario's device paths, whole disks first, each followed by its partitions
#   lsblk-tree.json  lsblk --json --bytes --output COLS <the scenario's disks>
#   lsblk-list.json  lsblk --json --bytes --list --output COLS <the scenario's disks>
#   blkid-p/X.txt    blkid -p -o export -- /dev/X, one call per device of devices.txt
#   blkid-p/X.status that call's exit status
#   swaps.txt        cat /proc/swaps
#   sysfs.txt        per device X in devices.txt, two lines:
#                      "X holders:" then the names in /sys/class/block/X/holders/
#                      "X partitions:" then the entries of /sys/class/block/X/ that have a
#                      `partition` file; names separated by one space, in `ls` order, no
#                      trailing space when empty
#   btrfs-show.txt   btrfs filesystem show --raw   (btrfs scenarios only)
#   mountinfo.txt    the lines of /proc/self/mountinfo whose mount source is a scenario device
set -euo pipefail

if [[ ${NOS_CAPTURE_IN_NS:-} != 1 ]]; then
  [[ $(id -u) == 0 ]] || { echo "capture.sh: run as root" >&2; exit 1; }
  exec env NOS_CAPTURE_IN_NS=1 unshare -m --propagation private -- bash "$0" "$@"
fi

out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/nos-capture.XXXXXX)
cols=NAME,KNAME,PATH,PKNAME,MAJ:MIN,TYPE,SIZE,ROTA,RM,RO,MODEL,SERIAL,WWN,PTTYPE,PTUUID,PARTTYPE,PARTLABEL,PARTUUID,FSTYPE,LABEL,UUID,MOUNTPOINTS
# The btrfs pool's UUID is fixed (mkfs.btrfs -U) so that a rerun gives the same fsid as the
# committed capture (tests quote it); every other identifier is whatever the tools choose.
btrfs_uuid=00b3a85f-67a1-4ead-97e8-a2c61cc26544

loops=()    # loop devices we attached
mounts=()   # mount points we mounted (innermost last)
swaps=()    # devices we swapon'ed
arrays=()   # md arrays we created
md_nodes=() # /dev nodes mdadm created that did not exist before

cleanup() {
  local status=$?
  set +e
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}"; done
  for s in "${swaps[@]}"; do swapoff "$s"; done
  for md in "${arrays[@]}"; do mdadm --stop "$md"; done
  for node in "${md_nodes[@]}"; do rm -f "$node"; done
  for loop in "${loops[@]}"; do
    partx -d "$loop" 2>/dev/null
    losetup -d "$loop"
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

disk() { # a fresh 1 GiB sparse loop disk, in $DISK (not echoed: a subshell would lose `loops`)
  local img="$work/disk${#loops[@]}.img"
  truncate -s 1G "$img"
  DISK=$(losetup -f --show "$img")
  loops+=("$DISK")
}

parts() { # make the kernel (and devtmpfs) show the partitions of loop disk $1
  partx -a "$1"
}

mnt() { # mnt DEVICE NAME: mount DEVICE at $work/mnt-NAME, in $MNT
  MNT="$work/mnt-$2"
  mkdir -p "$MNT"
  mount "$1" "$MNT"
  mounts+=("$MNT")
}

unmnt() { # unmount the last mount
  umount "${mounts[-1]}"
  unset 'mounts[-1]'
}

put_file() { # put_file DEVICE NAME: mount, write a known file, unmount
  mnt "$1" "$2"
  echo "nos fixture file on $2" >"$MNT/nos-fixture.txt"
  sync
  unmnt
}

capture() { # capture NAME DISK...
  local name=$1; shift
  local dir="$out/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  local disks=("$@") all=() device part
  for device in "${disks[@]}"; do
    all+=("$device")
    for part in "$device"p*; do [[ -b $part ]] && all+=("$part"); done
  done
  printf '%s\n' "${all[@]}" >"$dir/devices.txt"
  lsblk --json --bytes --output "$cols" "${disks[@]}" >"$dir/lsblk-tree.json"
  lsblk --json --bytes --list --output "$cols" "${disks[@]}" >"$dir/lsblk-list.json"
  # One device per call, as nos probes: with several devices blkid stops at the first one on
  # which it finds nothing (see blkid-stops-at-blank, which keeps that one-call capture).
  local status
  mkdir "$dir/blkid-p"
  for device in "${all[@]}"; do
    status=0
    blkid -p -o export -- "$device" >"$dir/blkid-p/${device#/dev/}.txt" || status=$?
    echo "$status" >"$dir/blkid-p/${device#/dev/}.status"
  done
  if [[ $name == blkid-stops-at-blank ]]; then
    status=0
    blkid -p -o export -- "${all[@]}" >"$dir/blkid-p-one-call.txt" || status=$?
    echo "$status" >"$dir/blkid-p-one-call.status"
  fi
  cat /proc/swaps >"$dir/swaps.txt"
  local x entry names
  for device in "${all[@]}"; do
    x=${device#/dev/}
    names=$(ls "/sys/class/block/$x/holders/" | tr '\n' ' ')
    echo "$x holders:${names:+ ${names% }}"
    names=""
    for entry in "/sys/class/block/$x"/*; do
      [[ -e $entry/partition ]] && names+=" ${entry##*/}"
    done
    echo "$x partitions:$names"
  done >"$dir/sysfs.txt"
  if [[ $name == btrfs-* ]]; then btrfs filesystem show --raw >"$dir/btrfs-show.txt"; fi
  local pattern
  pattern=$(printf '%s|' "${all[@]}"); pattern=${pattern%|}
  grep -E " - [^ ]+ ($pattern) " /proc/self/mountinfo >"$dir/mountinfo.txt" || true
}

gpt_one_partition() { printf 'label: gpt\n,\n' | sfdisk -q "$1"; parts "$1"; }

main() {
  local d a b
  # The order of the disks matters only for the loop numbers the kernel hands out.
  disk; d=$DISK
  capture blank "$d"

  disk; d=$DISK; gpt_one_partition "$d"; mkfs.ext4 -q -L data "${d}p1"
  put_file "${d}p1" data
  capture gpt-ext4-unmounted "$d"
  mnt "${d}p1" data
  capture gpt-ext4-mounted "$d"
  unmnt

  disk; d=$DISK; printf 'label: gpt\n' | sfdisk -q "$d"; parts "$d" || true # no partitions: partx may complain
  capture gpt-empty "$d"

  disk; d=$DISK; gpt_one_partition "$d"
  head -c 64 /dev/urandom >"$work/keyfile"
  cryptsetup luksFormat --type luks2 --batch-mode --key-file "$work/keyfile" "${d}p1"
  capture luks-on-partition "$d"

  disk; d=$DISK; mkswap "$d"
  capture swap "$d"
  swapon "$d"; swaps+=("$d")
  capture swap-active "$d"
  swapoff "$d"; unset 'swaps[-1]'

  disk; d=$DISK; mkfs.ext4 -q -L whole "$d"
  put_file "$d" whole
  capture ext4-whole-disk "$d"

  disk; a=$DISK; disk; b=$DISK
  mkfs.btrfs -q -f -U "$btrfs_uuid" -d raid1 -m raid1 -L fixpool "$a" "$b"
  put_file "$a" fixpool
  capture btrfs-unmounted "$a" "$b"
  mnt "$a" fixpool
  capture btrfs-mounted "$a" "$b"
  unmnt

  disk; a=$DISK; disk; b=$DISK
  local before after node
  before=$(ls -d /dev/md* /dev/md/* 2>/dev/null || true)
  if mdadm --create /dev/md/nosfix --level=1 --raid-devices=2 --metadata=1.2 --run --force "$a" "$b"; then
    arrays+=(/dev/md/nosfix)
    capture md-member "$a" "$b"
    mdadm --stop /dev/md/nosfix; unset 'arrays[-1]'
    capture md-member-stopped "$a" "$b"
  else
    echo "capture.sh: mdadm --create failed (see above); no md scenarios" >&2
  fi
  after=$(ls -d /dev/md* /dev/md/* 2>/dev/null || true)
  for node in $after; do
    grep -qxF -- "$node" <<<"$before" || { [[ -d $node ]] || md_nodes+=("$node"); }
  done

  disk; d=$DISK; printf 'label: dos\n,300M,L\n,,%s\n' "$(command -v mkfs.vfat >/dev/null && echo b || echo S)" | sfdisk -q "$d"; parts "$d"
  mkfs.ext4 -q -L first "${d}p1"
  put_file "${d}p1" first
  if command -v mkfs.vfat >/dev/null; then
    mkfs.vfat -n SECOND "${d}p2"
    # The kernel here may lack vfat (it did when this was captured): write the file with mtools.
    if grep -qw vfat /proc/filesystems; then
      put_file "${d}p2" second
    elif command -v mcopy >/dev/null; then
      echo "nos fixture file on second" >"$work/second.txt"
      mcopy -i "${d}p2" "$work/second.txt" ::nos-fixture.txt
    fi
  else
    mkswap "${d}p2"
  fi
  capture dos-two-partitions "$d"

  # What the disk-wipe plan leaves: a loop device re-reads no partition table, so the kernel
  # still lists the (now empty) partition.
  disk; d=$DISK; gpt_one_partition "$d"; mkfs.ext4 -q -L data "${d}p1"
  wipefs -q --all -- "${d}p1"; wipefs -q --all -- "$d" 2>/dev/null || true
  capture gpt-wiped "$d"

  # Not one of the requested scenarios: shows that one blkid -p call over several devices stops
  # at the first device where nothing is found (ext4, blank, swap: only the ext4 is printed).
  local c
  disk; a=$DISK; disk; b=$DISK; disk; c=$DISK
  mkfs.ext4 -q -L before "$a"; put_file "$a" before
  mkswap "$c"
  capture blkid-stops-at-blank "$a" "$b" "$c"
}

main
