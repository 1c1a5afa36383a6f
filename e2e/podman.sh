#!/usr/bin/env bash
# podman.sh — build the repository's Dockerfile, unchanged, with Debian's
# podman/buildah and run the image, without any registry access.
#
# The two base images are replaced by local stand-ins with the same names:
#   docker.io/library/golang:1.26             host Go toolchain (/usr/local/go or
#                                             $(go env GOROOT)), busybox as /bin/sh,
#                                             CA bundle, and a module cache holding
#                                             the root module's dependencies
#                                             (GOPROXY=off inside)
#   gcr.io/distroless/static-debian12:nonroot /etc/passwd with nonroot 65532,
#                                             /etc/ssl/certs/ca-certificates.crt,
#                                             /tmp, /home/nonroot; no shell
# then: podman build --pull=never, inspect (user, ports, healthcheck), run
# read-only, GET /health, HEALTHCHECK, a /chat using current_time, the audit
# file on /data, podman stop (SIGTERM) -> exit code 0, and audit verify of
# the file in a second container on the same volume.
#
# Needs root and apt (installs podman buildah runc busybox-static when
# missing). Everything podman stores lives in a temporary directory removed
# at exit (E2E_PODMAN_KEEP=1 keeps it). Prints "podman e2e: PASS" on success.
# Environment: VERSION (stamped, default 0.0.0-podman), E2E_PODMAN_PORT
# (host port for the API, default 18080), E2E_PODMAN_STORAGE (overlay|vfs,
# default overlay).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${VERSION:-0.0.0-podman}
PORT=${E2E_PODMAN_PORT:-18080}
ADMIN_PORT=$((PORT + 1))
STORAGE=${E2E_PODMAN_STORAGE:-overlay}
IMAGE=localhost/production-agent:$VERSION
NAME=production-agent-e2e-$$

log() { printf '== podman.sh: %s\n' "$*" >&2; }
fail() { printf 'podman.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (podman runs rootful here)"

# 1. Tools.
missing=()
for p in podman buildah runc busybox-static ca-certificates curl; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
GOROOT_HOST=$(go env GOROOT)
[ -x "$GOROOT_HOST/bin/go" ] || fail "no Go toolchain at $GOROOT_HOST"

# 2. A private podman configuration: runc, lowered ulimits (the defaults
# exceed this sandbox's hard limits), storage in a temporary directory.
WORK=$(mktemp -d /tmp/e2e-podman.XXXXXX)
export CONTAINERS_CONF=$WORK/containers.conf
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf
# Healthcheck timers are systemd units; this machine runs no systemd.
export DISABLE_HC_SYSTEMD=true
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "$STORAGE"
runroot = "$WORK/run"
graphroot = "$WORK/graph"
EOF
cat >"$CONTAINERS_REGISTRIES_CONF" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF

cleanup() {
  status=$?
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$NAME-data" >/dev/null 2>&1 || true
  buildah rm --all >/dev/null 2>&1 || true
  if [ "${E2E_PODMAN_KEEP:-}" = 1 ]; then
    log "kept $WORK (export CONTAINERS_CONF CONTAINERS_STORAGE_CONF CONTAINERS_REGISTRIES_CONF from it)"
  else
    podman system reset -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  exit $status
}
trap cleanup EXIT

# 3. Stand-in gcr.io/distroless/static-debian12:nonroot.
log "stand-in gcr.io/distroless/static-debian12:nonroot"
ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
install -d -m 0755 "$mnt/etc/ssl/certs"
install -d -m 1777 "$mnt/tmp"
install -d -m 0700 -o 65532 -g 65532 "$mnt/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$mnt/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$mnt/etc/group"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
buildah umount "$ctr" >/dev/null
# The real image's configuration (docker inspect of :nonroot).
buildah config --user 65532 --workingdir /home/nonroot \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$ctr"
buildah commit -q "$ctr" gcr.io/distroless/static-debian12:nonroot >/dev/null
buildah rm "$ctr" >/dev/null

# 4. Stand-in golang:1.26 with the root module's dependencies cached, so
# the Dockerfile's "go mod download" works with GOPROXY=off.
log "module cache for $ROOT"
MODCACHE=$WORK/modcache
(cd "$ROOT" && GOMODCACHE=$MODCACHE GOFLAGS=-modcacherw go mod download)
log "stand-in docker.io/library/golang:1.26 from $GOROOT_HOST ($("$GOROOT_HOST/bin/go" version))"
ctr=$(buildah from scratch)
mnt=$(buildah mount "$ctr")
install -d -m 0755 "$mnt/bin" "$mnt/usr/local" "$mnt/etc/ssl/certs" "$mnt/go/pkg" "$mnt/root"
install -d -m 1777 "$mnt/tmp"
cp -a "$GOROOT_HOST" "$mnt/usr/local/go"
cp -a "$MODCACHE" "$mnt/go/pkg/mod"
install -m 0755 /bin/busybox "$mnt/bin/busybox"
for applet in sh ash mkdir cp mv rm ls cat env chmod chown ln true false test echo; do
  ln -s busybox "$mnt/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$mnt/etc/passwd"
printf 'root:x:0:\n' >"$mnt/etc/group"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
buildah umount "$ctr" >/dev/null
buildah config --workingdir /go \
  --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env GOLANG_VERSION="$("$GOROOT_HOST/bin/go" env GOVERSION)" \
  --env GOPATH=/go --env GOTOOLCHAIN=local --env GOPROXY=off --env GOSUMDB=off "$ctr"
buildah commit -q "$ctr" docker.io/library/golang:1.26 >/dev/null
buildah rm "$ctr" >/dev/null

# 5. The unchanged Dockerfile. --format docker keeps HEALTHCHECK (OCI
# image configs have no such field).
log "podman build $IMAGE"
podman build --pull=never --format docker --build-arg VERSION="$VERSION" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT"

# 6. Image configuration.
user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = 65532:65532 ] || fail "image user is '$user'; want 65532:65532"
ports=$(podman image inspect -f '{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}' "$IMAGE")
case "$ports" in *8080/tcp*9090/tcp*) ;; *) fail "exposed ports '$ports'; want 8080/tcp and 9090/tcp" ;; esac
hc=$(podman image inspect -f '{{.Config.Healthcheck.Test}}' "$IMAGE")
[ "$hc" = "[CMD /production-agent healthcheck]" ] || fail "healthcheck is '$hc'"
log "image: user $user, ports $ports, healthcheck $hc"

# 7. Run it as the image says (no --user), root file system read-only,
# /data a named volume (podman fills a new one from the image's /data,
# owner 65532 included). No healthcheck timer: podman
# schedules those through systemd, absent here (DISABLE_HC_SYSTEMD);
# "podman healthcheck run" below runs the image's HEALTHCHECK once instead.
log "podman run (read-only root) on 127.0.0.1:$PORT"
podman run -d --name "$NAME" --read-only --health-interval=disable \
  -v "$NAME-data:/data" -p "127.0.0.1:$PORT:8080" -p "127.0.0.1:$ADMIN_PORT:9090" "$IMAGE" >/dev/null

ok=
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >"$WORK/health.json" 2>/dev/null; then ok=1; break; fi
  [ "$(podman inspect -f '{{.State.Running}}' "$NAME")" = true ] || break
  sleep 0.2
done
[ -n "$ok" ] || { podman logs "$NAME" >&2 || true; fail "GET /health did not answer 200"; }
log "GET /health: $(cat "$WORK/health.json")"
grep -q "\"version\":\"$VERSION\"" "$WORK/health.json" || fail "/health does not report version $VERSION"

pid=$(podman inspect -f '{{.State.Pid}}' "$NAME")
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uids" = "65532 65532 65532 65532" ] || fail "container process uids '$uids'; want 65532"
log "process $pid runs as uid $uids"

podman healthcheck run "$NAME" || fail "podman healthcheck run (the image's HEALTHCHECK) failed"
log "HEALTHCHECK passed"

curl -fsS -H 'Content-Type: application/json' \
  -d '{"user_id":"u","session_id":"s","message":"What time is it in Tokyo?"}' \
  "http://127.0.0.1:$PORT/chat" >"$WORK/chat.json" || fail "POST /chat"
grep -q 'Asia/Tokyo' "$WORK/chat.json" || fail "POST /chat: no Asia/Tokyo in $(cat "$WORK/chat.json")"
log "POST /chat: current_time answered for Asia/Tokyo"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics.txt" || fail "GET admin /metrics"
grep -q '^agent_build_info' "$WORK/metrics.txt" || fail "admin /metrics lacks agent_build_info"

podman cp "$NAME:/data/audit.jsonl" "$WORK/audit.jsonl" || fail "no /data/audit.jsonl in the container"
[ -s "$WORK/audit.jsonl" ] || fail "/data/audit.jsonl is empty"
log "audit: $(wc -l <"$WORK/audit.jsonl") records in /data/audit.jsonl"

podman stop -t 40 "$NAME" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || { podman logs "$NAME" >&2 || true; fail "exit code after podman stop (SIGTERM) is $code; want 0"; }
log "SIGTERM: exit code 0"

# The audit hash chain the container wrote is intact (same volume).
podman run --rm --read-only -v "$NAME-data:/data" "$IMAGE" audit verify /data/audit.jsonl || fail "audit verify /data/audit.jsonl"

echo "podman e2e: PASS"
