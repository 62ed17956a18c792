#!/usr/bin/env bash
# Captures the real output nos's fact parsers read, for each disk scenario below, into
# host/tests/data/facts/real/<scenario>/ (run as root, from anywhere; needs loop devices,
# sfdisk, mkfs.ext4, mkfs.btrfs, mkswap, cryptsetup, mdadm). Everything it makes is removed
# again, also on failure. Nothing here is edited by hand afterwards: rerun it instead.
#
# Files per scenario:
#   lsblk-tree.json  nos_agent::fact_commands::LSBLK_ARGV (tree form) over the scenario's disks
#   lsblk-list.json  the same with --list
#   blkid-p.txt      blkid -p -o export -- <every disk and partition of the scenario>, one call
#   blkid-p.status   its exit status
#   swaps.txt        /proc/swaps
#   mountinfo.txt    the lines of /proc/self/mountinfo that name the scenario's devices
#   devices.txt      the scenario's device paths, disks first
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cols=NAME,KNAME,PATH,PKNAME,MAJ:MIN,TYPE,SIZE,ROTA,RM,RO,MODEL,SERIAL,WWN,PTTYPE,PTUUID,PARTTYPE,PARTLABEL,PARTUUID,FSTYPE,LABEL,UUID,MOUNTPOINTS
loops=()
cleanup() {
  set +e
  umount -q "$work"/mnt-* 2>/dev/null
  swapoff -a 2>/dev/null
  for md in /dev/md/nosfix*; do [[ -e $md ]] && mdadm --stop "$md" >/dev/null 2>&1; done
  for loop in "${loops[@]}"; do partx -d "$loop" 2>/dev/null; losetup -d "$loop" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

disk() { # a fresh 1 GiB sparse loop disk, in $DISK (not echoed: a subshell would lose `loops`)
  local img="$work/disk${#loops[@]}.img"
  truncate -s 1G "$img"
  DISK=$(losetup -f --show "$img")
  loops+=("$DISK")
}
parts() { partx -a "$1" 2>/dev/null || true; }

capture() { # capture NAME DEVICE...
  local name=$1; shift
  local dir="$out/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  local disks=() all=()
  for device in "$@"; do
    disks+=("$device")
    all+=("$device")
    for part in "$device"p*; do [[ -b $part ]] && all+=("$part"); done
  done
  printf '%s\n' "${all[@]}" >"$dir/devices.txt"
  lsblk --json --bytes --output "$cols" "${disks[@]}" >"$dir/lsblk-tree.json"
  lsblk --json --bytes --list --output "$cols" "${disks[@]}" >"$dir/lsblk-list.json"
  local status=0
  blkid -p -o export -- "${all[@]}" >"$dir/blkid-p.txt" || status=$?
  echo "$status" >"$dir/blkid-p.status"
  cat /proc/swaps >"$dir/swaps.txt"
  local pattern
  pattern=$(printf '%s|' "${all[@]}"); pattern=${pattern%|}
  grep -E " ($pattern) " /proc/self/mountinfo >"$dir/mountinfo.txt" || true
}

gpt_one_partition() { printf 'label: gpt\n,\n' | sfdisk -q "$1" >/dev/null 2>&1 || true; parts "$1"; }

main() {
  local d a b
  disk; d=$DISK; capture blank "$d"

  disk; d=$DISK; gpt_one_partition "$d"; mkfs.ext4 -q -L data "${d}p1"
  mkdir "$work/mnt-data"; mount "${d}p1" "$work/mnt-data"; echo kept >"$work/mnt-data/file"
  capture gpt-ext4-mounted "$d"
  umount "$work/mnt-data"
  capture gpt-ext4-unmounted "$d"

  disk; d=$DISK; printf 'label: gpt\n' | sfdisk -q "$d" >/dev/null 2>&1 || true
  capture gpt-empty "$d"

  disk; d=$DISK; gpt_one_partition "$d"
  head -c 64 /dev/urandom >"$work/key"
  cryptsetup luksFormat --type luks2 --batch-mode --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$work/key" "${d}p1" >/dev/null
  capture luks-on-partition "$d"

  disk; d=$DISK; mkswap -q "$d" >/dev/null
  capture swap "$d"
  swapon "$d"
  capture swap-active "$d"
  swapoff "$d"

  disk; d=$DISK; mkfs.ext4 -q -L whole "$d"
  capture ext4-whole-disk "$d"

  disk; a=$DISK; disk; b=$DISK
  mkfs.btrfs -q -f -d raid1 -m raid1 -L fixpool "$a" "$b" >/dev/null
  capture btrfs-unmounted "$a" "$b"
  mkdir "$work/mnt-pool"; mount "$a" "$work/mnt-pool"
  capture btrfs-mounted "$a" "$b"
  umount "$work/mnt-pool"

  disk; a=$DISK; disk; b=$DISK
  if mdadm --create /dev/md/nosfix --level=1 --raid-devices=2 --metadata=1.2 --run --force "$a" "$b" >/dev/null 2>&1; then
    capture md-member "$a" "$b"
    mdadm --stop /dev/md/nosfix >/dev/null
    capture md-member-stopped "$a" "$b"
  else
    echo "md: mdadm --create failed here; no md scenarios" >&2
  fi

  disk; d=$DISK; printf 'label: dos\n,300M,L\n,,S\n' | sfdisk -q "$d" >/dev/null 2>&1 || true; parts "$d"
  mkfs.ext4 -q -L first "${d}p1"; mkswap -q "${d}p2" >/dev/null
  capture dos-two-partitions "$d"

  # What the disk-wipe plan leaves: a loop device re-reads no partition table, so the kernel
  # still lists the (now empty) partition.
  disk; d=$DISK; gpt_one_partition "$d"; mkfs.ext4 -q -L data "${d}p1"
  wipefs -q --all -- "${d}p1"; wipefs -q --all -- "$d" 2>/dev/null || true
  capture gpt-wiped "$d"
}

main
{
  echo "captured $(date -u +%Y-%m-%d) on Linux $(uname -r)"
  lsblk --version; blkid --version; mkfs.btrfs --version | head -1; mdadm --version 2>&1; cryptsetup --version
} >"$out/VERSIONS"
