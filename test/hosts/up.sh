#!/usr/bin/env bash
# up.sh - build (if needed) and start a small fleet of real Debian 12 "servers" for tests.
#
# Each server is a Docker container with: its own root filesystem, systemd as PID 1,
# sshd (key auth, root + a sudo-capable "deploy" user), python3, git, rsync, sqlite3,
# postgresql-client, curl.  One extra "db" server also runs a real PostgreSQL 15 under
# systemd.  Everything uses the host network namespace, and every daemon listens only on
# its own loopback address (127.0.0.N), so nothing is reachable from outside the machine.
#
# The image is built once, by one of two paths (picked automatically, logged, recorded in
# fleet.json as "image_build"); both apply the same recipe (recipe.sh):
#   rootfs      mmdebstrap/debootstrap -> rootfs tarball -> docker import.  Needs root on a
#               Debian-like Linux (apt), but no registry: the path for our machines.
#   dockerfile  docker build of ./Dockerfile FROM debian:bookworm.  Needs a reachable registry
#               (or the base image cached), but neither root nor apt: Docker Desktop, rootless CI.
# Images are reused while the recipe is unchanged; healthy containers are left alone, stale
# ones are recreated.  Tear down with down.sh.
#
# Knobs (environment):
#   FLEET_DIR        work dir                       (default /tmp/fleet)
#   FLEET_NODES      "name=addr ..." plain servers  (default "web1=127.0.0.11 web2=127.0.0.12 web3=127.0.0.13")
#   FLEET_DB         "name=addr" PostgreSQL server, "" for none (default "db=127.0.0.14")
#   FLEET_SSH_PORT   sshd port on every node        (default 22)
#   FLEET_PG_PORT    PostgreSQL port on the db node (default 5432)
#   FLEET_BUILD      auto (default) | rootfs | dockerfile: how to build the image
#   FLEET_MIRROR     Debian mirror                  (rootfs default: the first one this machine's apt uses;
#                    dockerfile: replaces the one the base image's apt uses, default: keep it)
#   FLEET_BOOTSTRAP  rootfs path: mmdebstrap (~30s) or debootstrap (~60s); default: whichever is installed
#   FLEET_BASE_IMAGE dockerfile path: base image    (default debian:bookworm)
#   FLEET_IMAGE_TAG  tag of fleet-node/fleet-db     (default bookworm)
#   FLEET_EXTRA_PACKAGES  extra packages for every node (comma separated; changes the recipe)
#   FLEET_REBUILD=1  ignore cached images/tarballs and rebuild from scratch
#   FLEET_UP_REPORT  file to append "started <name>", "reused <name>", "dockerd-started" lines to (for the test hook)
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 5 ]; then
  echo "up.sh: needs bash >= 5 (this is ${BASH_VERSION:-not bash}; on macOS: brew install bash)" >&2; exit 1
fi
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/recipe.sh"          # SUITE, PG_VER, PKGS, fleet_init, customize_rootfs, configure_postgres

FLEET_DIR=${FLEET_DIR:-/tmp/fleet}
NODES=${FLEET_NODES:-"web1=127.0.0.11 web2=127.0.0.12 web3=127.0.0.13"}
DB=${FLEET_DB-"db=127.0.0.14"}
SSH_PORT=${FLEET_SSH_PORT:-22}
PG_PORT=${FLEET_PG_PORT:-5432}
MIRROR=${FLEET_MIRROR:-$(apt_mirror)}   # the Debian mirror this machine's apt already uses (recipe.sh)
if [ -n "${FLEET_BOOTSTRAP:-}" ]; then BOOTSTRAP=$FLEET_BOOTSTRAP
elif command -v mmdebstrap >/dev/null; then BOOTSTRAP=mmdebstrap
elif command -v debootstrap >/dev/null; then BOOTSTRAP=debootstrap
else BOOTSTRAP=mmdebstrap; fi
BASE_IMAGE=${FLEET_BASE_IMAGE:-debian:$SUITE}
PG_USER=app PG_PASSWORD=app PG_DBNAME=appdb
NODE_IMAGE=fleet-node:${FLEET_IMAGE_TAG:-$SUITE}
DB_IMAGE=fleet-db:${FLEET_IMAGE_TAG:-$SUITE}
LABEL=io.fleet.managed
BUILD=$FLEET_DIR/build IMAGES=$FLEET_DIR/images STATE=$FLEET_DIR/state KEYS=$FLEET_DIR/keys

T0=$EPOCHREALTIME
elapsed() { awk -v a="$EPOCHREALTIME" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }
log()  { printf '[up %6ss] %s\n' "$(elapsed "$T0")" "$*"; }
die()  { log "ERROR: $*"; exit 1; }
report() { [ -z "${FLEET_UP_REPORT:-}" ] || echo "$*" >>"$FLEET_UP_REPORT"; }
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

IS_ROOT=0; [ "$(id -u)" = 0 ] && IS_ROOT=1
OS=$(uname -s)

# ---------------------------------------------------------------- which image build path
rootfs_blocker() {   # why the rootfs path cannot run on this machine; prints nothing if it can
  if [ "$OS" != Linux ]; then echo "not Linux ($OS)"
  elif [ $IS_ROOT != 1 ]; then echo "not root (mmdebstrap --mode=root, chroot and mount need root)"
  elif ! command -v "$BOOTSTRAP" >/dev/null && ! command -v apt-get >/dev/null; then
    echo "no $BOOTSTRAP and no apt-get to install it (not a Debian-like system)"
  elif [ -z "$MIRROR" ]; then echo "no Debian mirror in this machine's apt sources (read: $(apt_sources_where)); set FLEET_MIRROR"
  fi
}
ROOTFS_BLOCKER=$(rootfs_blocker)
case ${FLEET_BUILD:-auto} in
  auto)
    if [ -z "$ROOTFS_BLOCKER" ]; then
      BUILD_PATH=rootfs WHY="root on a Debian-like system; needs no registry"
    else
      BUILD_PATH=dockerfile WHY="rootfs path unavailable: $ROOTFS_BLOCKER"
    fi ;;
  rootfs)
    [ -z "$ROOTFS_BLOCKER" ] || die "FLEET_BUILD=rootfs, but $ROOTFS_BLOCKER"
    BUILD_PATH=rootfs WHY="FLEET_BUILD=rootfs" ;;
  dockerfile) BUILD_PATH=dockerfile WHY="FLEET_BUILD=dockerfile" ;;
  *) die "FLEET_BUILD must be auto, rootfs or dockerfile (got '$FLEET_BUILD')" ;;
esac
if [ $BUILD_PATH = rootfs ]; then IMAGE_BUILD="rootfs ($BOOTSTRAP, $MIRROR)"; else IMAGE_BUILD="dockerfile (FROM $BASE_IMAGE)"; fi
log "image build path: $IMAGE_BUILD - $WHY"

mkdir -p "$FLEET_DIR" "$BUILD" "$IMAGES" "$STATE" "$KEYS"

# ---------------------------------------------------------------- host prerequisites
need_pkgs=() missing=()
want() { command -v "$1" >/dev/null || { missing+=("$1"); need_pkgs+=("$2"); }; }   # command package
if [ $BUILD_PATH = rootfs ]; then want "$BOOTSTRAP" "$BOOTSTRAP"; want zstd zstd; fi
want ssh openssh-client; want ssh-keygen openssh-client; want ssh-keyscan openssh-client
want docker docker.io
[ "$OS" != Linux ] || want flock util-linux
[ "$OS" != Linux ] || [ $IS_ROOT != 1 ] || docker info >/dev/null 2>&1 || want dockerd docker.io
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ $IS_ROOT = 1 ] && command -v apt-get >/dev/null; then
    mapfile -t need_pkgs < <(printf '%s\n' "${need_pkgs[@]}" | sort -u)
    log "apt-get install ${need_pkgs[*]} (missing: ${missing[*]})"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"; } \
      >"$BUILD/apt-host.log" 2>&1 || { tail -20 "$BUILD/apt-host.log"; die "apt-get install ${need_pkgs[*]} failed (log: $BUILD/apt-host.log)"; }
  else
    die "missing commands: ${missing[*]} - install them (Debian packages: $(printf '%s\n' "${need_pkgs[@]}" | sort -u | xargs))"
  fi
fi
if command -v flock >/dev/null; then
  exec 9>"$FLEET_DIR/.lock"                    # serialise concurrent up/down runs
  flock -n 9 || { log "waiting for another up.sh/down.sh on $FLEET_DIR (lock $FLEET_DIR/.lock)"; flock 9; }
else
  log "warning: no flock here; concurrent up.sh/down.sh runs are not serialised"
fi
TAR=tar
if ! tar --version 2>/dev/null | grep -q 'GNU tar'; then
  command -v gtar >/dev/null && TAR=gtar || die "needs GNU tar (macOS: brew install gnu-tar)"
fi

# ---------------------------------------------------------------- docker
if ! docker_err=$(docker info 2>&1 >/dev/null); then
  if [ "$OS" = Linux ] && [ $IS_ROOT = 1 ]; then
    # No systemd on these hosts: start dockerd ourselves, without touching host networking.
    # (down.sh only stops a dockerd whose pid is recorded here.)
    log "docker not answering; starting dockerd (--iptables=false --bridge=none, log: $STATE/dockerd.log)"
    # 9>&-: dockerd must not inherit the flock on fd 9, or it would hold the lock for its lifetime.
    setsid dockerd --iptables=false --bridge=none >"$STATE/dockerd.log" 2>&1 </dev/null 9>&- &
    dpid=$!; echo $dpid >"$STATE/dockerd.pid"
    for _ in $(seq 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 $dpid 2>/dev/null || break       # exited: no point waiting
      sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
      if kill -0 $dpid 2>/dev/null; then why="still not answering after 30 s (pid $dpid left running)"
      else wait $dpid && rc=0 || rc=$?; why="exited with status $rc"; rm -f "$STATE/dockerd.pid"; fi
      log "last lines of $STATE/dockerd.log:"
      tail -n 25 "$STATE/dockerd.log" | sed 's/^/    /'
      die "Docker cannot start: dockerd $why. The real test servers need Docker."
    fi
    report "dockerd-started"
  else
    die "Docker is not reachable ($(printf '%s' "$docker_err" | tail -1)). Start Docker (Docker Desktop, or dockerd as root) and re-run; the real test servers need it."
  fi
fi
DOCKER_OS=$(docker info -f '{{.OperatingSystem}}' 2>/dev/null || true)
DESKTOP=0
if [[ $DOCKER_OS == *"Docker Desktop"* ]]; then
  DESKTOP=1
  log "warning: Docker Desktop: the servers use --network host on 127.0.0.N addresses; this needs host networking enabled (Docker Desktop >= 4.34, Settings > Resources > Network) and may still not reach 127.0.0.N from the host (macOS only routes 127.0.0.1 unless aliased)"
fi

# ---------------------------------------------------------------- images
hash12() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi | cut -c1-12; }

install_postgres() {   # $1 = rootfs (still holding the bootstrap's apt lists)
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
  configure_postgres "$R"
}

build_rootfs_tarballs() {
  local R=$BUILD/rootfs t
  rm -rf "$R" "$BUILD/apt-lists"
  log "$BOOTSTRAP $SUITE (minbase + $PKGS)"; t=$EPOCHREALTIME
  case $BOOTSTRAP in
    debootstrap) debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$R" "$MIRROR" ;;
    mmdebstrap)  mmdebstrap --mode=root --variant=minbase --skip=cleanup/apt/lists --include="$PKGS" "$SUITE" "$R" "$MIRROR" ;;
    *) die "FLEET_BOOTSTRAP must be debootstrap or mmdebstrap" ;;
  esac >"$BUILD/bootstrap.log" 2>&1 || { tail -20 "$BUILD/bootstrap.log"; die "$BOOTSTRAP failed (log: $BUILD/bootstrap.log)"; }
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

image_recipe() { docker image inspect -f '{{index .Config.Labels "io.fleet.recipe"}}' "$1" 2>/dev/null || true; }
import_image() { # $1 tarball, $2 tag
  zstd -dc "$1" | docker import -c 'CMD ["/sbin/fleet-init"]' -c 'ENV container=docker' \
    -c "LABEL io.fleet.recipe=$RECIPE" - "$2" >/dev/null
}

build_images_rootfs() {
  local t
  if [ "${FLEET_REBUILD:-0}" = 1 ]; then rm -f "$NODE_TAR" "$DB_TAR"; fi
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
  find "$IMAGES" -name 'fleet-*.tar.zst' ! -name "*-$RECIPE.tar.zst" -delete   # tarballs of old recipes
}

build_images_dockerfile() {
  local t target tag net=() nocache=()
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "docker pull $BASE_IMAGE"
    docker pull "$BASE_IMAGE" >"$BUILD/docker-pull.log" 2>&1 || {
      tail -5 "$BUILD/docker-pull.log" | sed 's/^/    /'
      die "cannot build the test server image: pulling $BASE_IMAGE failed (no registry reachable?) and the rootfs path is unavailable here (${ROOTFS_BLOCKER:-not chosen: FLEET_BUILD=dockerfile})"; }
  fi
  # Linux: build steps use the host network (apt only), never a bridge network; Docker Desktop
  # has no such concern (its bridge lives in its VM) and host networking there is opt-in.
  [ $DESKTOP = 1 ] || net=(--network host)
  [ "${FLEET_REBUILD:-0}" != 1 ] || nocache=(--no-cache --pull)
  for target in node db; do
    if [ $target = node ]; then tag=$NODE_IMAGE; else [ -n "$DB" ] || continue; tag=$DB_IMAGE; fi
    log "docker build --target $target -t $tag (FROM $BASE_IMAGE, log: $BUILD/docker-build-$target.log)"; t=$EPOCHREALTIME
    docker build "${net[@]}" "${nocache[@]}" -f "$HERE/Dockerfile" --target $target \
      --build-arg "BASE=$BASE_IMAGE" --build-arg "FLEET_EXTRA_PACKAGES=${FLEET_EXTRA_PACKAGES:-}" \
      --build-arg "FLEET_MIRROR=${FLEET_MIRROR:-}" --label "io.fleet.recipe=$RECIPE" -t "$tag" "$HERE" \
      >"$BUILD/docker-build-$target.log" 2>&1 || {
        tail -25 "$BUILD/docker-build-$target.log" | sed 's/^/    /'
        die "docker build of the $target image failed (log: $BUILD/docker-build-$target.log)"; }
    log "built $tag in $(elapsed "$t")s"
  done
}

case $BUILD_PATH in
  rootfs) RECIPE=$( { echo "rootfs $BOOTSTRAP $SUITE $MIRROR $PKGS $PG_VER"; cat "$HERE/recipe.sh"
                      declare -f install_postgres build_rootfs_tarballs; } | hash12) ;;
  dockerfile) RECIPE=$( { echo "dockerfile $BASE_IMAGE $SUITE ${FLEET_MIRROR:-} $PKGS $PG_VER"
                          cat "$HERE/recipe.sh" "$HERE/Dockerfile"; } | hash12) ;;
esac
NODE_TAR=$IMAGES/fleet-node-$SUITE-$RECIPE.tar.zst
DB_TAR=$IMAGES/fleet-db-$SUITE-$RECIPE.tar.zst

if [ "${FLEET_REBUILD:-0}" = 1 ] || [ "$(image_recipe "$NODE_IMAGE")" != "$RECIPE" ] \
   || { [ -n "$DB" ] && [ "$(image_recipe "$DB_IMAGE")" != "$RECIPE" ]; }; then
  "build_images_$BUILD_PATH"
  IMPORTED=1
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
for e in "${ALL[@]}"; do   # network rule: test servers live on loopback only
  set -- $e; [[ $2 =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$1: address '$2' is not in 127.0.0.0/8"
done
ADD_HOSTS=()
for e in "${ALL[@]}"; do set -- $e; ADD_HOSTS+=(--add-host "$1:$2"); done
ADD_HOSTS_SIG=$(printf '%s,' "${ALL[@]}")

addr_port_busy() { # is something other than our container listening on $1:$2 (or a wildcard)?
  command -v ss >/dev/null || return 1
  ss -Hltn "sport = :$2" | awk '{print $4}' | grep -qE "^($1|0\.0\.0\.0|\*|\[::\]):$2$"
}

# What systemd says went wrong on a node: `systemctl --failed`, the journal of each failed unit,
# and the container's console.  Uses docker exec, so it works even when sshd is down.
show_failed() { # name
  local c=fleet-$1 u st
  if [ "$(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" != true ]; then
    echo "  container $c is not running: $(docker inspect -f 'status={{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}' "$c" 2>&1)"
  else
    st=$(docker exec "$c" systemctl is-system-running 2>/dev/null || true)
    echo "  \$ systemctl is-system-running   -> ${st:-?}"
    echo "  \$ systemctl --failed --no-pager"
    docker exec "$c" systemctl --failed --no-pager 2>&1 | sed 's/^/    /'
    for u in $(docker exec "$c" systemctl --failed --plain --no-legend 2>/dev/null \
               | awk '{for(i=1;i<=NF;i++) if ($i ~ /\.(service|socket|mount|automount|swap|target|path|timer|slice|scope|device)$/) {print $i; break}}'); do
      echo "  \$ journalctl -u $u -n 15"
      docker exec "$c" journalctl -u "$u" -n 15 --no-pager 2>&1 | sed 's/^/    /'
    done
    if [ "$st" = starting ] || [ "$st" = initializing ]; then
      echo "  \$ systemctl list-jobs --no-pager"; docker exec "$c" systemctl list-jobs --no-pager 2>&1 | sed 's/^/    /'
    fi
  fi
  echo "  \$ docker logs --tail 25 $c"
  docker logs --tail 25 "$c" 2>&1 | sed -e $'s/\x1b\\[[0-9;]*m//g' -e 's/^/    /'    # console, colours stripped
}

container_ok() { # name addr image -> 0 if running, ours, same image & config, and ssh answers
  local c=fleet-$1 i st
  [ "$(docker inspect -f '{{.State.Running}} {{index .Config.Labels "io.fleet.managed"}} {{.Image}} {{index .Config.Labels "io.fleet.sig"}}' "$c" 2>/dev/null)" \
    = "true 1 $(docker image inspect -f '{{.Id}}' "$3") $2:$SSH_PORT:$PG_PORT:$ADD_HOSTS_SIG" ] || return 1
  for i in $(seq 50); do "${SSH[@]}" "root@$2" true 2>/dev/null && break; sleep 0.2; done   # may still be booting
  [ "$i" -lt 50 ] || "${SSH[@]}" "root@$2" true 2>/dev/null || { log "$c: running but sshd does not answer; recreating"; return 1; }
  # Up and reachable: reuse it, even if a unit failed since (another test run may be using it,
  # and its failed units may be that run's business).  Say so, loudly, with the details.
  st=$("${SSH[@]}" "root@$2" 'timeout 60 systemctl is-system-running --wait' 2>/dev/null || true)
  if [ "$st" != running ]; then
    log "warning: $c ($2) is up but systemd says '$st'; reusing it as is (docker rm -f $c for a fresh one):"
    show_failed "$1"
  fi
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
    --label "$LABEL=1" --label "io.fleet.sig=$addr:$SSH_PORT:$PG_PORT:$ADD_HOSTS_SIG" --label "io.fleet.dir=$FLEET_DIR" \
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
  $TAR --numeric-owner --owner=0 --group=0 --no-recursion -C "$st" -cf - "${rootfiles[@]}" | docker cp - "$c:/"
  $TAR --numeric-owner --owner=1000 --group=1000 --no-recursion -C "$st" -cf - home/deploy/.ssh/authorized_keys | docker cp - "$c:/"
  rm -rf "$st"
  docker start "$c" >/dev/null
}

: >"$STATE/containers.new"
started=() reused=()
for e in "${ALL[@]}"; do
  set -- $e
  echo "fleet-$1" >>"$STATE/containers.new"
  if container_ok "$@"; then
    log "fleet-$1 ($2) already up"; reused+=("$1"); report "reused $1"
  else
    report "started $1"; create_container "$@"; started+=("$1")
  fi
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

# ---------------------------------------------------------------- wait for what we started
wait_node() { # name addr -> 0 when sshd answers and systemd says 'running'; diagnostics on stdout
  local i st
  for i in $(seq 150); do "${SSH[@]}" "root@$2" true 2>/dev/null && break; sleep 0.2; done
  if ! "${SSH[@]}" "root@$2" true 2>/dev/null; then
    echo "fleet-$1 ($2): sshd did not answer within 30 s"; show_failed "$1"; return 1
  fi
  st=$("${SSH[@]}" "root@$2" 'timeout 90 systemctl is-system-running --wait' 2>/dev/null || true)
  if [ "$st" != running ]; then
    echo "fleet-$1 ($2): did not boot cleanly, systemd says '${st:-?}'"; show_failed "$1"; return 1
  fi
}
t=$EPOCHREALTIME; pids=() failed=()
for n in "${started[@]}"; do
  for e in "${ALL[@]}"; do set -- $e; [ "$1" = "$n" ] || continue
    wait_node "$1" "$2" >"$STATE/boot-$1.log" 2>&1 & pids+=("$!:$1"); done
done
for p in "${pids[@]}"; do
  wait "${p%%:*}" || { failed+=("${p#*:}"); log "ERROR: test server ${p#*:} failed to boot:"; cat "$STATE/boot-${p#*:}.log"; }
  rm -f "$STATE/boot-${p#*:}.log"
done
[ ${#failed[@]} = 0 ] || die "test server(s) failed to boot: ${failed[*]} (details above; they are left running for inspection: docker exec -it fleet-${failed[0]} bash)"
log "all ${#ALL[@]} nodes up (started now: ${started[*]:-none}$([ ${#started[@]} = 0 ] || printf ', booted in %ss' "$(elapsed "$t")"); reused: ${reused[*]:-none})"
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
  grep -qF "$hp ssh-ed25519 " "$kh" || die "ssh-keyscan got no ed25519 host key from $1 ($2:$SSH_PORT)"
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
  printf '{\n  "ssh_key": "%s",\n  "known_hosts": "%s",\n  "ssh_config": "%s",\n  "users": ["root", "deploy"],\n  "image_build": "%s",\n' \
    "$KEYS/id_ed25519" "$FLEET_DIR/known_hosts" "$FLEET_DIR/ssh_config" "$IMAGE_BUILD"
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
} >"$FLEET_DIR/fleet.json.tmp"
mv "$FLEET_DIR/fleet.json.tmp" "$FLEET_DIR/fleet.json"
log "fleet up: $(for e in "${ALL[@]}"; do set -- $e; printf '%s=%s ' "$1" "$2"; done)(inventory: $FLEET_DIR/fleet.json, $FLEET_DIR/fleet.env)"
