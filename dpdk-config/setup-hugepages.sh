#!/usr/bin/env bash
# setup-hugepages.sh [COUNT]: reserve COUNT 2 MiB hugepages (default 512,
# i.e. 1 GiB) and mount hugetlbfs at /dev/hugepages, for DPDK.
#
# Idempotent: run it as often as you like. It never lowers a reservation
# that is already at least COUNT, and mounts only if no hugetlbfs is mounted.
#
# The kernel may grant fewer pages than asked (memory is fragmented) or none
# at all (a container without CAP_SYS_ADMIN, a VM without hugetlb). That is
# not an error: the script says what it got and exits 0, and palisade then
# falls back to --no-huge (slower, and only for virtual ports: TAP, pcap,
# memif, null). Reboot-proof alternative: add `vm.nr_hugepages = COUNT` to
# /etc/sysctl.d/ and a hugetlbfs line to /etc/fstab.
set -euo pipefail

readonly PAGE_KB=2048
readonly SYSFS="/sys/kernel/mm/hugepages/hugepages-${PAGE_KB}kB"
readonly MOUNT_POINT="/dev/hugepages"

count="${1:-512}"
if ! [[ "${count}" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [COUNT]   (COUNT = number of 2 MiB pages, default 512)" >&2
  exit 2
fi

note() { echo "setup-hugepages: $*"; }

fallback_note() {
  note "palisade will fall back to --no-huge (fine for TAP/pcap/memif/null ports;"
  note "PCI NICs need hugepages)."
}

if [[ ! -d "${SYSFS}" ]]; then
  note "this kernel offers no ${PAGE_KB} kB hugepages (${SYSFS} is missing)."
  fallback_note
  exit 0
fi

current="$(cat "${SYSFS}/nr_hugepages")"
if ((current >= count)); then
  note "${current} hugepages of ${PAGE_KB} kB already reserved (asked for ${count})."
else
  # Writing may fail outright in a container (read-only /sys) or succeed
  # with fewer pages; either way read back what the kernel granted.
  if ! echo "${count}" 2>/dev/null >"${SYSFS}/nr_hugepages"; then
    note "cannot write ${SYSFS}/nr_hugepages (not root, or /sys is read-only here)."
  fi
  current="$(cat "${SYSFS}/nr_hugepages")"
fi

if ! grep -qs '^[^ ]* [^ ]* hugetlbfs ' /proc/mounts; then
  mkdir -p "${MOUNT_POINT}" 2>/dev/null || true
  if mount -t hugetlbfs -o "pagesize=2M" nodev "${MOUNT_POINT}" 2>/dev/null; then
    note "mounted hugetlbfs at ${MOUNT_POINT}."
  else
    note "cannot mount hugetlbfs at ${MOUNT_POINT} (no permission in this container?)."
  fi
fi

mounts="$(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts | paste -sd ' ' -)"
free="$(cat "${SYSFS}/free_hugepages")"

note "reserved ${current} of ${count} requested ${PAGE_KB} kB hugepages, ${free} free ($((free * PAGE_KB / 1024)) MiB);"
note "hugetlbfs mounted at: ${mounts:-nowhere}."

if ((current == 0)) || [[ -z "${mounts}" ]]; then
  note "hugepages are NOT usable on this host."
  fallback_note
elif ((current < count)); then
  note "the kernel granted fewer pages than asked (fragmented memory?);"
  note "profiles asking for more than $((free * PAGE_KB / 1024)) MiB will fall back to --no-huge."
else
  note "hugepages ready."
fi
exit 0
