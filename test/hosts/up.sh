#!/usr/bin/env bash
# up.sh - build (if needed) and start a small fleet of real Debian 12 "servers" for tests.
#
# Each server is a Docker container with: its own root filesystem, systemd as PID 1,
# sshd (key auth, root + a sudo-capable "deploy" user), python3, git, rsync, sqlite3,
# postgresql-client, curl.  One extra "db" server also runs a real PostgreSQL 15 under
# systemd.  Everything uses the host network namespace, and every daemon listens only on
# its own loopback address (127.0.0.N), so nothing is reachable from outside the machine.
#
# Idempotent: images are built once (mmdebstrap/debootstrap -> rootfs tarball -> docker import) and
# reused while the recipe is unchanged; healthy containers are left alone, stale ones are
# recreated.  Tear down with down.sh.
#
# Knobs (environment):
#   FLEET_DIR        work dir                       (default /tmp/fleet)
#   FLEET_NODES      "name=addr ..." plain servers  (default "web1=127.0.0.11 web2=127.0.0.12 web3=127.0.0.13")
#   FLEET_DB         "name=addr" PostgreSQL server, "" for none (default "db=127.0.0.14")
#   FLEET_SSH_PORT   sshd port on every node        (default 22)
#   FLEET_PG_PORT    PostgreSQL port on the db node (default 5432)
#   FLEET_MIRROR     Debian mirror                  (default: the first one this machine's apt uses)
#   FLEET_BOOTSTRAP  mmdebstrap (default, ~30s) or debootstrap (~60s) to build the rootfs
#   FLEET_EXTRA_PACKAGES  extra packages for every node (comma separated; changes the recipe)
#   FLEET_REBUILD=1  ignore cached images/tarballs and rebuild the rootfs from scratch
set -Eeuo pipefail

FLEET_DIR=${FLEET_DIR:-/tmp/fleet}
NODES=${FLEET_NODES:-"web1=127.0.0.11 web2=127.0.0.12 web3=127.0.0.13"}
DB=${FLEET_DB-"db=127.0.0.14"}
SSH_PORT=${FLEET_SSH_PORT:-22}
PG_PORT=${FLEET_PG_PORT:-5432}
# The Debian mirror this machine's apt already uses (deb822 .sources or one-line sources.list).
detect_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; break}}' || true
  } 2>/dev/null | grep -v -- '-security' | head -1 || true
}
MIRROR=${FLEET_MIRROR:-$(detect_mirror)}
BOOTSTRAP=${FLEET_BOOTSTRAP:-mmdebstrap}
SUITE=bookworm
PG_VER=15
PG_USER=app PG_PASSWORD=app PG_DBNAME=appdb
PKGS="systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,python3,git,rsync,sqlite3,postgresql-client,curl,ca-certificates,sudo,procps,iproute2,less${FLEET_EXTRA_PACKAGES:+,$FLEET_EXTRA_PACKAGES}"
NODE_IMAGE=fleet-node:$SUITE
DB_IMAGE=fleet-db:$SUITE
LABEL=io.fleet.managed
BUILD=$FLEET_DIR/build IMAGES=$FLEET_DIR/images STATE=$FLEET_DIR/state KEYS=$FLEET_DIR/keys

T0=$EPOCHREALTIME
elapsed() { awk -v a="$EPOCHREALTIME" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }
log()  { printf '[up %6ss] %s\n' "$(elapsed "$T0")" "$*"; }
die()  { log "ERROR: $*"; exit 1; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

[ "$(id -u)" = 0 ] || die "must run as root"
[ -n "$MIRROR" ] || die "no Debian mirror found in this machine's apt sources; set FLEET_MIRROR"
mkdir -p "$FLEET_DIR" "$BUILD" "$IMAGES" "$STATE" "$KEYS"
exec 9>"$FLEET_DIR/.lock"; flock 9          # serialise concurrent up/down runs

# ---------------------------------------------------------------- host prerequisites
need_pkgs=()
command -v "$BOOTSTRAP" >/dev/null || need_pkgs+=("$BOOTSTRAP")
command -v zstd        >/dev/null || need_pkgs+=(zstd)
command -v ssh         >/dev/null || need_pkgs+=(openssh-client)
command -v dockerd     >/dev/null || need_pkgs+=(docker.io)
command -v flock       >/dev/null || need_pkgs+=(util-linux)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >"$BUILD/apt-host.log" 2>&1 \
    || { tail -20 "$BUILD/apt-host.log"; die "apt-get install failed"; }
fi
if ! docker info >/dev/null 2>&1; then
  # No systemd on these hosts: start dockerd ourselves, without touching host networking.
  # (down.sh only stops a dockerd whose pid is recorded here.)
  log "starting dockerd (--iptables=false --bridge=none)"
  setsid dockerd --iptables=false --bridge=none >"$STATE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "dockerd did not come up, see $STATE/dockerd.log"
fi

# ---------------------------------------------------------------- image recipe
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

customize_rootfs() {   # $1 = rootfs; common to all images
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
  # Units that are meaningless in a container or could touch the shared kernel / host.
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
           e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
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

install_postgres() {   # $1 = rootfs (still holding debootstrap's apt lists)
  local R=$1 rc=0
  printf '#!/bin/sh\nexit 101\n' >"$R"/usr/sbin/policy-rc.d; chmod 755 "$R"/usr/sbin/policy-rc.d
  mount -t proc proc "$R"/proc; mount --bind /dev "$R"/dev
  { ls "$R"/var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || chroot "$R" apt-get update -q
    chroot "$R" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
      apt-get install -y -q --no-install-recommends postgresql; } >"$BUILD/apt-postgresql.log" 2>&1 || rc=$?
  umount "$R"/dev "$R"/proc
  rm -f "$R"/usr/sbin/policy-rc.d
  [ $rc = 0 ] || { tail -20 "$BUILD/apt-postgresql.log"; return $rc; }
  chroot "$R" apt-get clean
  local C=$R/etc/postgresql/$PG_VER/main
  # Listen nowhere unless the node gets a per-container 20-fleet-listen.conf (docker cp'd by up.sh).
  printf "listen_addresses = ''\n" >"$C"/conf.d/10-fleet-default.conf
  echo 'host all all 127.0.0.0/8 scram-sha-256' >>"$C"/pg_hba.conf
}

build_rootfs_tarballs() {
  local R=$BUILD/rootfs t
  rm -rf "$R" "$BUILD/apt-lists"
  log "$BOOTSTRAP $SUITE (minbase + $PKGS)"; t=$EPOCHREALTIME
  case $BOOTSTRAP in
    debootstrap) debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$R" "$MIRROR" ;;
    mmdebstrap)  mmdebstrap --mode=root --variant=minbase --skip=cleanup/apt/lists --include="$PKGS" "$SUITE" "$R" "$MIRROR" ;;
    *) die "FLEET_BOOTSTRAP must be debootstrap or mmdebstrap" ;;
  esac >"$BUILD/bootstrap.log" 2>&1 || { tail -20 "$BUILD/bootstrap.log"; die "$BOOTSTRAP failed"; }
  log "$BOOTSTRAP done in $(elapsed "$t")s ($(du -sh "$R" | cut -f1))"
  cp -a "$R"/var/lib/apt/lists "$BUILD/apt-lists"     # keep for the db image's apt-get install
  customize_rootfs "$R"
  log "node rootfs $(du -sh "$R" | cut -f1) after trimming"
  tar --numeric-owner -C "$R" -cf - . | zstd -T0 -3 -q >"$NODE_TAR.tmp" && mv "$NODE_TAR.tmp" "$NODE_TAR"
  if [ -n "$DB" ]; then      # db image = node image + PostgreSQL server, built in the same tree
    rm -rf "$R"/var/lib/apt/lists; mv "$BUILD/apt-lists" "$R"/var/lib/apt/lists
    log "installing postgresql into db rootfs"; t=$EPOCHREALTIME
    install_postgres "$R"
    customize_rootfs "$R"
    log "postgresql installed in $(elapsed "$t")s, db rootfs $(du -sh "$R" | cut -f1)"
    tar --numeric-owner -C "$R" -cf - . | zstd -T0 -3 -q >"$DB_TAR.tmp" && mv "$DB_TAR.tmp" "$DB_TAR"
  fi
  rm -rf "$R" "$BUILD/apt-lists"
}

RECIPE=$( { echo "$BOOTSTRAP $SUITE $MIRROR $PKGS $PG_VER"; declare -f fleet_init customize_rootfs install_postgres build_rootfs_tarballs; } | sha256sum | cut -c1-12)
NODE_TAR=$IMAGES/fleet-node-$SUITE-$RECIPE.tar.zst
DB_TAR=$IMAGES/fleet-db-$SUITE-$RECIPE.tar.zst

image_recipe() { docker image inspect -f '{{index .Config.Labels "io.fleet.recipe"}}' "$1" 2>/dev/null || true; }
import_image() { # $1 tarball, $2 tag
  zstd -dc "$1" | docker import -c 'CMD ["/sbin/fleet-init"]' -c 'ENV container=docker' \
    -c "LABEL io.fleet.recipe=$RECIPE" - "$2" >/dev/null
}

if [ "${FLEET_REBUILD:-0}" = 1 ]; then rm -f "$NODE_TAR" "$DB_TAR"; fi
if [ "${FLEET_REBUILD:-0}" = 1 ] || [ "$(image_recipe "$NODE_IMAGE")" != "$RECIPE" ] \
   || { [ -n "$DB" ] && [ "$(image_recipe "$DB_IMAGE")" != "$RECIPE" ]; }; then
  if [ ! -s "$NODE_TAR" ] || { [ -n "$DB" ] && [ ! -s "$DB_TAR" ]; }; then
    build_rootfs_tarballs
  else
    log "reusing rootfs tarballs for recipe $RECIPE"
  fi
  log "docker import $NODE_IMAGE${DB:+ and $DB_IMAGE}"; t=$EPOCHREALTIME
  import_image "$NODE_TAR" "$NODE_IMAGE" & p1=$!
  [ -z "$DB" ] || import_image "$DB_TAR" "$DB_IMAGE"
  wait $p1
  log "imported in $(elapsed "$t")s"
  IMPORTED=1
  find "$IMAGES" -name 'fleet-*.tar.zst' ! -name "*-$RECIPE.tar.zst" -delete   # tarballs of old recipes
else
  log "images up to date (recipe $RECIPE)"
fi

# ---------------------------------------------------------------- keys
[ -s "$KEYS/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C fleet-test -f "$KEYS/id_ed25519"
SSH=(ssh -i "$KEYS/id_ed25519" -p "$SSH_PORT" -o BatchMode=yes -o ConnectTimeout=2
     -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)

# ---------------------------------------------------------------- containers
declare -a ALL=()        # "name addr image role"
for n in $NODES; do ALL+=("${n%%=*} ${n#*=} $NODE_IMAGE node"); done
[ -z "$DB" ] || ALL+=("${DB%%=*} ${DB#*=} $DB_IMAGE db")
ADD_HOSTS=()
for e in "${ALL[@]}"; do set -- $e; ADD_HOSTS+=(--add-host "$1:$2"); done
ADD_HOSTS_SIG=$(printf '%s,' "${ALL[@]}")

addr_port_busy() { # is something other than our container listening on $1:$2 (or a wildcard)?
  ss -Hltn "sport = :$2" | awk '{print $4}' | grep -qE "^($1|0\.0\.0\.0|\*|\[::\]):$2$"
}

container_ok() { # name addr image -> 0 if running, ours, same image & config, and ssh answers
  local c=fleet-$1 i
  [ "$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "io.fleet.managed"}} {{.Image}} {{index .Config.Labels "io.fleet.sig"}}' "$c" 2>/dev/null)" \
    = "true 1 $(docker image inspect -f '{{.Id}}' "$3") $2:$SSH_PORT:$PG_PORT:$ADD_HOSTS_SIG" ] || return 1
  for i in $(seq 50); do "${SSH[@]}" "root@$2" true 2>/dev/null && return 0; sleep 0.2; done   # may still be booting
  return 1
}

create_container() { # name addr image role
  local name=$1 addr=$2 img=$3 role=$4 c=fleet-$1 st=$STATE/stage-$1
  if docker inspect "$c" >/dev/null 2>&1; then
    [ "$(docker inspect -f '{{index .Config.Labels "io.fleet.managed"}}' "$c")" = 1 ] \
      || die "container $c exists but was not created by up.sh; not touching it"
    log "$c: stale, recreating"; docker rm -f "$c" >/dev/null
  fi
  if addr_port_busy "$addr" "$SSH_PORT"; then die "$addr:$SSH_PORT (or *:$SSH_PORT) already in use on this host; set FLEET_SSH_PORT"; fi
  if [ "$role" = db ] && addr_port_busy "$addr" "$PG_PORT"; then die "$addr:$PG_PORT already in use; set FLEET_PG_PORT"; fi
  docker create -t --name "$c" --hostname "$name" \
    --label "$LABEL=1" --label "io.fleet.sig=$addr:$SSH_PORT:$PG_PORT:$ADD_HOSTS_SIG" \
    --network host --cgroupns=private --cap-add SYS_ADMIN \
    --tmpfs /run:mode=755 --tmpfs /run/lock \
    --stop-signal RTMIN+3 --stop-timeout 20 --restart unless-stopped \
    "${ADD_HOSTS[@]}" "$img" >/dev/null
  # Per-node files go in before the first boot (docker cp of a tar stream keeps tar ownership;
  # only leaf entries are listed so existing directories keep their owner and mode).
  rm -rf "$st"; mkdir -p "$st/etc/ssh/sshd_config.d" "$st/root/.ssh" "$st/home/deploy/.ssh"
  local rootfiles=(etc/ssh/sshd_config.d/10-fleet-listen.conf root/.ssh/authorized_keys)
  printf 'ListenAddress %s:%s\n' "$addr" "$SSH_PORT" >"$st/etc/ssh/sshd_config.d/10-fleet-listen.conf"
  install -m 600 "$KEYS/id_ed25519.pub" "$st/root/.ssh/authorized_keys"
  install -m 600 "$KEYS/id_ed25519.pub" "$st/home/deploy/.ssh/authorized_keys"
  if [ "$role" = db ]; then
    mkdir -p "$st/etc/postgresql/$PG_VER/main/conf.d"
    printf "listen_addresses = '%s'\nport = %s\n" "$addr" "$PG_PORT" \
      >"$st/etc/postgresql/$PG_VER/main/conf.d/20-fleet-listen.conf"
    rootfiles+=("etc/postgresql/$PG_VER/main/conf.d/20-fleet-listen.conf")
  fi
  tar --numeric-owner --owner=0 --group=0 --no-recursion -C "$st" -cf - "${rootfiles[@]}" | docker cp - "$c:/"
  tar --numeric-owner --owner=1000 --group=1000 --no-recursion -C "$st" -cf - home/deploy/.ssh/authorized_keys | docker cp - "$c:/"
  rm -rf "$st"
  docker start "$c" >/dev/null
}

: >"$STATE/containers.new"
started=()
for e in "${ALL[@]}"; do
  set -- $e
  echo "fleet-$1" >>"$STATE/containers.new"
  if container_ok "$@"; then log "fleet-$1 ($2) already up"; else create_container "$@"; started+=("$1"); fi
done
# Remember every container we manage (down.sh removes exactly these), keeping older names too.
sort -u "$STATE/containers.new" "$STATE/containers" 2>/dev/null >"$STATE/containers.tmp" || true
mv "$STATE/containers.tmp" "$STATE/containers"; rm -f "$STATE/containers.new"
# Containers from an earlier up.sh with a different FLEET_NODES: remove them.
while read -r c; do
  grep -qx "$c" <(for e in "${ALL[@]}"; do set -- $e; echo "fleet-$1"; done) && continue
  if [ "$(docker inspect -f '{{index .Config.Labels "io.fleet.managed"}}' "$c" 2>/dev/null)" = 1 ]; then
    log "removing $c (no longer in FLEET_NODES/FLEET_DB)"; docker rm -f "$c" >/dev/null
  fi
done < "$STATE/containers"

# ---------------------------------------------------------------- wait for the fleet
wait_node() { # name addr
  local i
  for i in $(seq 150); do "${SSH[@]}" "root@$2" true 2>/dev/null && break; sleep 0.2; done
  local st; st=$("${SSH[@]}" "root@$2" 'timeout 60 systemctl is-system-running --wait' 2>/dev/null || true)
  if [ "$st" != running ]; then
    log "fleet-$1: system state '$st'"; "${SSH[@]}" "root@$2" 'systemctl --failed --no-pager' 2>/dev/null || true
    docker logs --tail 30 "fleet-$1" 2>&1 | sed 's/^/    /'
    return 1
  fi
}
t=$EPOCHREALTIME; pids=()
for e in "${ALL[@]}"; do set -- $e; wait_node "$1" "$2" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || die "a node did not reach 'running'"; done
log "all ${#ALL[@]} nodes: sshd up and systemd 'running' (waited $(elapsed "$t")s; started now: ${started[*]:-none})"
# Old fleet images (untagged by the re-import) can go once no container uses them any more.
[ -z "${IMPORTED:-}" ] || docker image prune -f --filter "label=io.fleet.recipe" >/dev/null

# ---------------------------------------------------------------- PostgreSQL on the db node
if [ -n "$DB" ]; then
  dbaddr=${DB#*=}
  "${SSH[@]}" "root@$dbaddr" "bash -s" <<EOF
set -e
for i in \$(seq 100); do pg_isready -q -h $dbaddr -p $PG_PORT && break; sleep 0.2; done
cd / && sudo -u postgres psql -p $PG_PORT -v ON_ERROR_STOP=1 -qAt <<'SQL'
SELECT 'CREATE ROLE $PG_USER LOGIN CREATEDB' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='$PG_USER') \gexec
ALTER ROLE $PG_USER PASSWORD '$PG_PASSWORD';
SELECT 'CREATE DATABASE $PG_DBNAME OWNER $PG_USER' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname='$PG_DBNAME') \gexec
SQL
EOF
  log "postgresql ready on $dbaddr:$PG_PORT (role $PG_USER, db $PG_DBNAME)"
fi

# ---------------------------------------------------------------- inventory for the test suite
kh=$FLEET_DIR/known_hosts.tmp; : >"$kh"
for e in "${ALL[@]}"; do
  set -- $e
  if [ "$SSH_PORT" = 22 ]; then hp="$2,$1"; else hp="[$2]:$SSH_PORT,[$1]:$SSH_PORT"; fi
  ssh-keyscan -T 3 -p "$SSH_PORT" "$2" 2>/dev/null | awk -v hp="$hp" '{ $1 = hp; print }' >>"$kh"
done
mv "$kh" "$FLEET_DIR/known_hosts"
{
  for e in "${ALL[@]}"; do
    set -- $e
    printf 'Host %s %s\n  HostName %s\n  Port %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n\n' \
      "$1" "$2" "$2" "$SSH_PORT" "$KEYS/id_ed25519" "$FLEET_DIR/known_hosts"
  done
} >"$FLEET_DIR/ssh_config"
{
  echo "FLEET_SSH_KEY=$KEYS/id_ed25519"
  echo "FLEET_SSH_PORT=$SSH_PORT"
  echo "FLEET_KNOWN_HOSTS=$FLEET_DIR/known_hosts"
  echo "FLEET_SSH_CONFIG=$FLEET_DIR/ssh_config"
  echo "FLEET_HOSTS=\"$(for e in "${ALL[@]}"; do set -- $e; printf '%s=%s ' "$1" "$2"; done | sed 's/ $//')\""
  if [ -n "$DB" ]; then
    echo "FLEET_PG_HOST=${DB#*=}"; echo "FLEET_PG_PORT=$PG_PORT"; echo "FLEET_PG_USER=$PG_USER"
    echo "FLEET_PG_PASSWORD=$PG_PASSWORD"; echo "FLEET_PG_DB=$PG_DBNAME"
  fi
} >"$FLEET_DIR/fleet.env"
{
  printf '{\n  "ssh_key": "%s",\n  "known_hosts": "%s",\n  "ssh_config": "%s",\n  "users": ["root", "deploy"],\n' \
    "$KEYS/id_ed25519" "$FLEET_DIR/known_hosts" "$FLEET_DIR/ssh_config"
  if [ -n "$DB" ]; then
    printf '  "postgres": {"host": "%s", "port": %s, "user": "%s", "password": "%s", "database": "%s"},\n' \
      "${DB#*=}" "$PG_PORT" "$PG_USER" "$PG_PASSWORD" "$PG_DBNAME"
  fi
  printf '  "hosts": [\n'; sep=
  for e in "${ALL[@]}"; do
    set -- $e
    printf '%s    {"name": "%s", "address": "%s", "port": %s, "role": "%s", "container": "fleet-%s"}' "$sep" "$1" "$2" "$SSH_PORT" "$4" "$1"
    sep=$',\n'
  done
  printf '\n  ]\n}\n'
} >"$FLEET_DIR/fleet.json"
log "fleet up: $(for e in "${ALL[@]}"; do set -- $e; printf '%s=%s ' "$1" "$2"; done)(inventory: $FLEET_DIR/fleet.json, $FLEET_DIR/fleet.env)"
