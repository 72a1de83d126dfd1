#!/usr/bin/env bash
# recipe.sh - what a fleet test server *is*, shared by both image builds in up.sh:
#   rootfs path:     mmdebstrap/debootstrap -> rootfs -> customize_rootfs -> docker import
#   dockerfile path: Dockerfile FROM debian:bookworm -> `recipe.sh docker-node|docker-db`
# Sourced by up.sh (functions + constants) and executed inside the Dockerfile build.
# Any change here changes up.sh's recipe hash, so the images are rebuilt on the next run.

SUITE=bookworm
PG_VER=15
PKGS="systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,python3,python3-venv,nodejs,git,rsync,sqlite3,postgresql-client,curl,ca-certificates,sudo,procps,iproute2,less,caddy${FLEET_EXTRA_PACKAGES:+,$FLEET_EXTRA_PACKAGES}"

# PID-1 wrapper baked into the image.  Docker mounts the (namespaced) cgroup tree read-only
# for non-privileged containers; systemd needs to manage its own subtree, so remount the
# container's *own* cgroup mounts read-write - but only when we are in a private cgroup
# namespace, i.e. when those mounts show nothing but this container's subtree.
fleet_init() { cat <<'EOF'
#!/bin/sh
if grep -qE '^(0::/|[0-9]+:name=systemd:/)$' /proc/self/cgroup; then
  for d in /sys/fs/cgroup /sys/fs/cgroup/*; do
    mountpoint -q "$d" && mount -o remount,rw,bind "$d" 2>/dev/null
  done
else
  echo "fleet-init: not in a private cgroup namespace (use --cgroupns=private); leaving cgroups read-only" >&2
fi
# Docker bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf; on a real server they are
# plain files (sed -i, hostnamectl and friends replace them by rename(), which fails with EBUSY
# on a bind mount).  Adopt Docker's content once into the container's own files, then drop the
# bind mounts on every boot so that later edits persist across reboots like on a real disk.
for f in hosts hostname resolv.conf; do
  mountpoint -q "/etc/$f" || continue
  if [ ! -e "/etc/.fleet-adopted-$f" ]; then
    cat "/etc/$f" >"/run/fleet-$f" && umount "/etc/$f" && cat "/run/fleet-$f" >"/etc/$f" \
      && rm -f "/run/fleet-$f" && touch "/etc/.fleet-adopted-$f"
  else
    umount "/etc/$f"
  fi
done
# With --network host an unconfigured sshd would listen on 0.0.0.0:22 of the host: refuse.
if [ ! -s /etc/ssh/sshd_config.d/10-fleet-listen.conf ] && [ -z "$FLEET_ALLOW_ANY_LISTEN" ]; then
  echo "fleet-init: /etc/ssh/sshd_config.d/10-fleet-listen.conf missing; refusing to boot" >&2
  exit 1
fi
exec /lib/systemd/systemd "$@"
EOF
}

customize_rootfs() {   # $1 = rootfs ("/" inside a Dockerfile build); common to all images
  local R=$1
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* \
         "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/* "$R"/var/log/*.log \
         "$R"/var/cache/debconf/*-old "$R"/var/lib/dpkg/*-old
  printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
    'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/locale/*' \
    >"$R"/etc/dpkg/dpkg.cfg.d/01-fleet-nodoc
  # identity: each container gets its own machine-id and SSH host keys on first boot
  : >"$R"/etc/machine-id
  ln -sf /etc/machine-id "$R"/var/lib/dbus/machine-id
  echo fleet-node >"$R"/etc/hostname
  rm -f "$R"/etc/ssh/ssh_host_*
  ln -sf /usr/share/zoneinfo/Etc/UTC "$R"/etc/localtime; echo Etc/UTC >"$R"/etc/timezone
  # sshd: keys only
  printf '%s\n' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' \
    'PermitRootLogin prohibit-password' 'UseDNS no' 'X11Forwarding no' \
    'MaxStartups 100:30:200' 'MaxSessions 50' >"$R"/etc/ssh/sshd_config.d/50-fleet.conf
  cat >"$R"/etc/systemd/system/fleet-ssh-hostkeys.service <<'EOF'
[Unit]
Description=Generate per-node SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes
EOF
  mkdir -p "$R"/etc/systemd/system/ssh.service.d
  printf '[Unit]\nWants=fleet-ssh-hostkeys.service\nAfter=fleet-ssh-hostkeys.service\n' \
    >"$R"/etc/systemd/system/ssh.service.d/10-fleet.conf
  # Units that are meaningless in a container or could touch the shared kernel / host (Debian's
  # caddy.service would take :80 of the shared network; fleet's proxy runs as fleet-proxy).
  rm -f "$R"/etc/systemd/system/getty.target.wants/getty@tty1.service \
        "$R"/etc/systemd/system/timers.target.wants/{apt-daily,apt-daily-upgrade,e2scrub_all,fstrim}.timer \
        "$R"/etc/systemd/system/multi-user.target.wants/e2scrub_reap.service \
        "$R"/etc/systemd/system/sysinit.target.wants/systemd-pstore.service
  local u
  for u in getty.target console-getty.service getty@.service serial-getty@.service \
           systemd-sysctl.service systemd-modules-load.service systemd-binfmt.service \
           proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
           sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
           sys-fs-fuse-connections.mount systemd-networkd.service systemd-networkd.socket \
           systemd-networkd-wait-online.service systemd-network-generator.service \
           systemd-timesyncd.service systemd-udevd.service systemd-hwdb-update.service \
           systemd-remount-fs.service systemd-firstboot.service systemd-pstore.service \
           systemd-journald-audit.socket apt-daily.timer apt-daily-upgrade.timer \
           e2scrub_all.timer e2scrub_reap.service fstrim.timer caddy.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  mkdir -p "$R"/etc/systemd/journald.conf.d "$R"/var/log/journal
  printf '[Journal]\nStorage=persistent\nSystemMaxUse=64M\n' >"$R"/etc/systemd/journald.conf.d/10-fleet.conf
  # a sudo-capable deploy user besides root
  chroot "$R" /bin/sh -c 'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo deploy; usermod -p "*" deploy'
  echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$R"/etc/sudoers.d/90-deploy; chmod 440 "$R"/etc/sudoers.d/90-deploy
  install -d -m 700 "$R"/root/.ssh
  install -d -m 700 -o 1000 -g 1000 "$R"/home/deploy/.ssh
  fleet_init >"$R"/sbin/fleet-init; chmod 755 "$R"/sbin/fleet-init
}

configure_postgres() {   # $1 = rootfs with the postgresql package installed
  local C=$1/etc/postgresql/$PG_VER/main
  # Listen nowhere unless the node gets a per-container 20-fleet-listen.conf (docker cp'd by up.sh).
  printf "listen_addresses = ''\n" >"$C"/conf.d/10-fleet-default.conf
  echo 'host all all 127.0.0.0/8 scram-sha-256' >>"$C"/pg_hba.conf
}

# ---- apt's mirror, read from the sources of the system this runs on (up.sh: this machine, for
# the rootfs build; the Dockerfile build: the base image). No mirror is ever named here.
# FLEET_APT_ETC (default /etc/apt) exists for the tests.
apt_sources_where() {   # where apt_mirror looks, for messages
  local etc=${FLEET_APT_ETC:-/etc/apt}
  echo "\`URIs:\` lines of $etc/sources.list.d/*.sources, \`deb\` lines of $etc/sources.list and $etc/sources.list.d/*.list"
}

# The first URI of the deb822 (.sources) or one-line (sources.list, *.list) sources that is not a
# security one; prints nothing if there is none.
apt_mirror() {
  local etc=${FLEET_APT_ETC:-/etc/apt}
  { grep -hE '^URIs:' "$etc"/sources.list.d/*.sources | awk '{print $2}' || true
    grep -hE '^deb ' "$etc"/sources.list "$etc"/sources.list.d/*.list \
      | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}' || true
  } 2>/dev/null | grep -v -- '-security' | head -1 || true
}

# Points apt at mirror $1 where its sources name apt_mirror's (whole URIs only, so the security
# sources stay); fails, saying where it looked, when they name none.
apt_use_mirror() {
  local to=$1 etc=${FLEET_APT_ETC:-/etc/apt} from f
  from=$(apt_mirror)
  if [ -z "$from" ]; then
    echo "recipe.sh: FLEET_MIRROR=$to, but apt's sources name no Debian mirror to replace" \
      "(read: $(apt_sources_where))" >&2
    return 1
  fi
  for f in "$etc"/sources.list "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v from="$from" -v to="$to" '
      /^(URIs:|deb |deb-src )/ { for (i = 2; i <= NF; i++) if ($i == from || $i == from "/") $i = to }
      { print }' "$f" >"$f.fleet-new"
    cat "$f.fleet-new" >"$f"; rm -f "$f.fleet-new"
  done
  echo "recipe.sh: apt uses FLEET_MIRROR ($to) instead of $from"
}

# ---- Dockerfile build steps (run as root inside `docker build`, rootfs = /)
apt_install() {   # packages...; no service may start inside the build
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 apt-get install -y -q --no-install-recommends "$@"
  rm -f /usr/sbin/policy-rc.d
  apt-get clean
}

docker_node() {
  if [ -n "${FLEET_MIRROR:-}" ]; then   # same knob as the rootfs path; security updates stay as they are
    apt_use_mirror "$FLEET_MIRROR"
  fi
  apt_install ${PKGS//,/ }
  customize_rootfs /
}

docker_db() {
  apt_install postgresql
  configure_postgres /
  customize_rootfs /
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then   # executed, not sourced
  set -Eeuo pipefail
  case ${1:-} in
    docker-node) docker_node ;;
    docker-db)   docker_db ;;
    *) echo "usage: recipe.sh docker-node|docker-db (inside the Dockerfile build)" >&2; exit 2 ;;
  esac
fi
