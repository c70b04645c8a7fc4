#!/bin/sh
# vagrant/build-image.sh: the palisade VM appliance image, from Debian 12
# packages and the palisade binary built here, as a qcow2 disk (and, with
# --box, a Vagrant box for the libvirt provider).
#
#   vagrant/build-image.sh [--binary PATH] [--cache DIR] [--box]
#
#   --binary PATH  the palisade to install (default target/release/palisade;
#                  build it first: cargo build --release -p palisade)
#   --cache DIR    where images are kept (default $PALISADE_VM_CACHE or
#                  /var/cache/palisade-vm)
#   --box          also write palisade-HASH.box (vagrant box add it)
#
# PALISADE_VM_ACCEL=tcg boots the one-off installer VM without KVM.
#
# The last line printed is the image's path. Run as root: mmdebstrap's
# root mode, mkfs and KVM. Needs mmdebstrap, qemu-system-x86, qemu-utils,
# e2fsprogs and fdisk (tools/setup.sh test installs them), and the Debian
# mirror.
#
# Two caches under DIR, keyed by sha256 of their inputs:
#   base-HASH.tar        Debian's packages installed (mmdebstrap); HASH of
#                        the package list and the base customization below.
#                        The slow part: minutes.
#   palisade-HASH.qcow2  the bootable image; HASH of this script, the files
#                        it installs (vagrant/image, the profile, the
#                        Prometheus files) and the binary. Tens of seconds
#                        from the base.
# A hit prints the cached path at once.
#
# What is in the image, and why, is in vagrant/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
binary=$repo/target/release/palisade
cache=${PALISADE_VM_CACHE:-/var/cache/palisade-vm}
box=no
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --box) box=yes; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//;/^set -eu/d'; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "build-image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap's root mode, mkfs, KVM)"
[ -x "$binary" ] || die "$binary is missing: cargo build --release -p palisade, or --binary PATH"
for tool in mmdebstrap qemu-img qemu-system-x86_64 mkfs.ext4 sfdisk objcopy; do
    command -v "$tool" >/dev/null || die "$tool is missing: tools/setup.sh test installs it"
done
mkdir -p "$cache"

# The inputs of the final image, in a fixed order.
inputs="$here/build-image.sh $(find "$here/image" -type f | LC_ALL=C sort) \
    $repo/dpdk-config/virtio.toml $here/prometheus/prometheus.yml $here/prometheus/alerts.yml"
image_hash=$( (for f in $inputs; do echo "${f#"$repo"/}"; cat "$f"; done; cat "$binary") | sha256sum | cut -c1-16)
image=$cache/palisade-$image_hash.qcow2

# Packages: the kernel and GRUB, systemd with networkd for the management
# NIC, DPDK 22.11's runtime (dpdk brings dpdk-devbind.py and testpmd for
# debugging; palisade links DPDK statically, the libraries below are what
# it links dynamically), Prometheus, and SSH plus the serial console for
# getting in.
packages="linux-image-amd64,grub-pc,initramfs-tools,systemd-sysv,udev,dbus,kmod,\
iproute2,iputils-ping,pciutils,procps,less,curl,ca-certificates,\
openssh-server,sudo,\
dpdk,librte-net-virtio23,libpcap0.8,libnuma1,libbsd0,libsqlite3-0,\
prometheus"

# mmdebstrap runs this inside the new system after the packages: users,
# services, settings that depend on nothing of palisade's.
customize_base='set -eu
root=$1
echo palisade > "$root/etc/hostname"
printf "127.0.0.1 localhost\n127.0.1.1 palisade\n" > "$root/etc/hosts"
printf "LABEL=palisade-root / ext4 errors=remount-ro 0 1\n" > "$root/etc/fstab"
chroot "$root" systemctl enable systemd-networkd.service
chroot "$root" systemctl enable prometheus.service
# The serial console logs root in without a password: whoever has the
# console owns the VM anyway. SSH takes keys only.
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
printf "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %%I \$TERM\n" \
    > "$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
# Host keys are made at first boot (image/systemd/ssh-host-keys.conf),
# not shared by every copy of the image.
rm -f "$root"/etc/ssh/ssh_host_*
# The Vagrant convention for a base box: user vagrant, passwordless sudo, the
# public insecure key (vagrant replaces it with a fresh one at the first
# vagrant up). Remove the user on an appliance not driven by Vagrant.
chroot "$root" useradd --create-home --shell /bin/bash vagrant
echo "vagrant ALL=(ALL) NOPASSWD:ALL" > "$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
mkdir -p -m 700 "$root/home/vagrant/.ssh"
echo "ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7PtixWKn5y2hMNG0zQPyUecp4pzC6kivAIhyfHilFR61RGL+GPXQ2MWZWFYbAGjyiYJnAmCP3NOTd0jMZEnDkbUvxhMmBYSdETk1rRgm+R4LOzFUGaHqHDLKLX+FIPKcF96hrucXzcWyLbIbEgE98OHlnVYCzRdK8jlqm8tehUc9c9WhQ== vagrant insecure public key" \
    > "$root/home/vagrant/.ssh/authorized_keys"
chmod 600 "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
'

# The base depends on the package list, the customization and the Debian
# mirror's state (not pinned: delete the cache to take the point
# releases).
base_hash=$(printf 'bookworm\n%s\n%s\n' "$packages" "$customize_base" | sha256sum | cut -c1-16)
base=$cache/base-$base_hash.tar

if [ -f "$image" ]; then
    say "cached: $image"
else
    start=$(date +%s)
    work=$(mktemp -d "$cache/build.XXXXXX")
    trap 'rm -rf "$work"' EXIT INT TERM

    if [ -f "$base" ]; then
        say "base cached: $base"
    else
        say "mmdebstrap: Debian 12 with $packages"
        printf '%s\n' "$customize_base" > "$work/customize.sh"
        mmdebstrap --mode=root --variant=minbase --format=tar \
            --aptopt='APT::Install-Recommends "false"' \
            --include="$packages" \
            --customize-hook="sh $work/customize.sh \"\$1\"" \
            bookworm "$work/base.tar" http://deb.debian.org/debian \
            "deb http://deb.debian.org/debian-security bookworm-security main" \
            "deb http://deb.debian.org/debian bookworm-updates main" >&2
        mv "$work/base.tar" "$base"
        say "base: $base ($(($(date +%s) - start)) s)"
    fi

    root=$work/root
    mkdir "$root"
    tar -C "$root" -xf "$base"

    # palisade: the binary (debug info stripped: the image carries what
    # runs), its configuration, its units, and the helpers they call.
    objcopy --strip-debug "$binary" "$root/usr/local/bin/palisade"
    chmod 755 "$root/usr/local/bin/palisade"
    install -d -m 755 "$root/etc/palisade" "$root/var/lib/palisade"
    install -m 644 "$here/image/etc/palisade.toml" "$root/etc/palisade/palisade.toml"
    install -m 644 "$repo/dpdk-config/virtio.toml" "$root/etc/palisade/profile.toml"
    for helper in palisade-bind-nics palisade-seed-config palisade-image-setup; do
        install -m 755 "$here/image/sbin/$helper" "$root/usr/local/sbin/$helper"
    done
    for unit in palisade.service palisade-bind-nics.service palisade-seed-config.service; do
        install -m 644 "$here/image/systemd/$unit" "$root/etc/systemd/system/$unit"
        chroot "$root" systemctl enable "$unit" >&2
    done
    install -d "$root/etc/systemd/system/ssh.service.d"
    install -m 644 "$here/image/systemd/ssh-host-keys.conf" "$root/etc/systemd/system/ssh.service.d/host-keys.conf"
    install -m 644 "$here/image/etc/networkd-mgmt.network" "$root/etc/systemd/network/50-mgmt.network"
    install -d "$root/etc/default/grub.d"
    install -m 644 "$here/image/etc/grub-palisade.cfg" "$root/etc/default/grub.d/palisade.cfg"
    install -m 644 "$here/prometheus/prometheus.yml" "$root/etc/prometheus/prometheus.yml"
    install -m 644 "$here/prometheus/alerts.yml" "$root/etc/prometheus/alerts.yml"
    printf 'uio_pci_generic\nqemu_fw_cfg\n' > "$root/etc/modules-load.d/palisade.conf"
    kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
    initrd=$(ls "$root"/boot/initrd.img-* | head -n 1)
    cp "$kernel" "$work/vmlinuz"
    cp "$initrd" "$work/initrd.img"

    # The disk: an MBR with one ext4 partition from 1 MiB, filled from the
    # directory by mkfs (no loop device, no mount).
    size_mb=4096
    mkfs.ext4 -q -L palisade-root -d "$root" "$work/root.ext4" "$((size_mb - 1))M"
    truncate -s "${size_mb}M" "$work/disk.raw"
    echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
    dd if="$work/root.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
    rm -rf "$root" "$work/root.ext4"

    # GRUB is installed from inside: one boot of the kernel straight from
    # QEMU, with palisade-image-setup as init.
    say "installing GRUB from inside the VM"
    # KVM's host CPU minus arch-capabilities (some nested KVM hosts refuse
    # that MSR and QEMU aborts); TCG without /dev/kvm, or when
    # PALISADE_VM_ACCEL=tcg says so.
    # kvm_pvm (a /dev/kvm without kvm_intel or kvm_amd) boots only PVM
    # guest kernels: Debian's stalls, so emulate there too.
    accel=${PALISADE_VM_ACCEL:-kvm}
    [ -w /dev/kvm ] || accel=tcg
    [ -n "${PALISADE_VM_ACCEL:-}" ] || [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ] || accel=tcg
    case "$accel" in
        kvm) cpu="-cpu host,-arch-capabilities" ;;
        tcg) cpu="-cpu max"; say "QEMU without KVM (TCG): slower" ;;
        *) die "PALISADE_VM_ACCEL=$accel: kvm or tcg" ;;
    esac
    timeout 600 qemu-system-x86_64 -accel "$accel" $cpu -m 1024 -smp 1 \
        -nodefaults -display none -no-reboot \
        -drive "file=$work/disk.raw,format=raw,if=virtio" \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
        -append "root=/dev/vda1 rw console=ttyS0 panic=1 init=/usr/local/sbin/palisade-image-setup" \
        -serial "file:$work/setup.log" >&2 || true
    grep -q 'palisade-image-setup: ok' "$work/setup.log" ||
        { cat "$work/setup.log" >&2; die "installing GRUB failed (console above)"; }

    qemu-img convert -O qcow2 "$work/disk.raw" "$work/image.qcow2"
    mv "$work/image.qcow2" "$image"
    say "built $image in $(($(date +%s) - start)) s"
fi

if [ "$box" = yes ]; then
    boxfile=${image%.qcow2}.box
    if [ -f "$boxfile" ]; then
        say "box cached: $boxfile"
    else
        # A vagrant-libvirt box: metadata.json, a Vagrantfile of defaults
        # and the disk as box.img.
        boxdir=$(mktemp -d "$cache/box.XXXXXX")
        ln "$image" "$boxdir/box.img" 2>/dev/null || cp "$image" "$boxdir/box.img"
        printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 4}\n' > "$boxdir/metadata.json"
        cat > "$boxdir/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "kvm"
  end
end
EOF
        tar -C "$boxdir" -czf "$boxfile.tmp" metadata.json Vagrantfile box.img
        mv "$boxfile.tmp" "$boxfile"
        rm -rf "$boxdir"
        say "box: $boxfile (vagrant box add --name palisade $boxfile)"
    fi
fi
echo "$image"
