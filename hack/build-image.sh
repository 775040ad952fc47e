#!/usr/bin/env bash
# Builds the tiercache image from the unchanged Dockerfile on a machine with no Docker engine
# and no registry: buildah builds it with pulls off, from local stand-ins for its two FROM
# images, which this script makes from Debian packages (mmdebstrap) and the Node 24 binary of
# the `node` npm package the project pins. With Docker and a registry, `docker build .` does
# the same from the real images.
#
#   hack/build-image.sh [TAG]        (npm run image; TAG defaults to localhost/tiercache:dev)
#
# Runs as root: buildah builds with --isolation chroot, the one isolation that works in a
# container without CAP_SYS_ADMIN in a user namespace. The stand-ins stay in buildah's store
# (/var/lib/containers) and are remade only when this recipe or the Node version changes.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-localhost/tiercache:dev}
# distroless nodejs24-debian12 is Debian 12; node:24-slim's npm is the npm Node 24 ships.
SUITE=bookworm
NPM_VERSION=11.6.2
DEPS_BASE=docker.io/library/node:24-slim
RUNTIME_BASE=gcr.io/distroless/nodejs24-debian12:nonroot

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (buildah --isolation chroot needs it), e.g. sudo npm run image"

missing=()
for tool in buildah:buildah mmdebstrap:mmdebstrap runc:runc; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  command -v apt-get >/dev/null || die "install ${missing[*]} (Debian/Ubuntu packages of the same names)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    die "apt-get could not install ${missing[*]}"
fi

NODE_BIN=$(readlink -f node_modules/.bin/node 2>/dev/null || true)
[ -x "$NODE_BIN" ] || die "node_modules/.bin/node is missing: run npm ci first (the node@24 devDependency is the image's Node)"
NODE_VERSION=$("$NODE_BIN" --version)
RECIPE=$( (sha256sum "$0" | cut -c1-16; echo "$NODE_VERSION") | sha256sum | cut -c1-16)

WORK=$(mktemp -d /tmp/tiercache-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The stand-in NAME is current when its label says it was made by this recipe.
current() {
  [ "$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.tiercache.recipe"}}' "$1" 2>/dev/null)" = "$RECIPE" ]
}

# Commits the directory ROOTFS as the image NAME, with the buildah config flags that follow.
commit_rootfs() {
  local name=$1 rootfs=$2 ctr mnt
  shift 2
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  cp -a "$rootfs/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  buildah config --label io.tiercache.recipe="$RECIPE" --label io.tiercache.stand-in=true "$@" "$ctr"
  buildah commit --quiet --rm "$ctr" "$name" >/dev/null
  say "made stand-in $name ($NODE_VERSION)"
}

# node:24-slim: a minimal Debian with a shell (RUN needs one), node and npm in /usr/local.
make_deps_base() {
  local root=$WORK/deps
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "$SUITE" "$root"
  install -D -m 0755 "$NODE_BIN" "$root/usr/local/bin/node"
  (cd "$WORK" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$WORK/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  commit_rootfs "$DEPS_BASE" "$root" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${NODE_VERSION#v}" --cmd node
}

# distroless nodejs24-debian12:nonroot: no shell and no package manager; glibc, libstdc++, CA
# certificates, tzdata, /etc/passwd with nonroot (65532), node at /nodejs/bin/node.
make_runtime_base() {
  local root=$WORK/runtime
  # extract: unpack the packages without running their scripts (there is no shell to run them).
  mmdebstrap --quiet --variant=extract --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=base-files,netbase,tzdata,ca-certificates,libc6,libgcc-s1,libstdc++6 "$SUITE" "$root" \
    >"$WORK/mmdebstrap.log" 2>&1 || { cat "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  # What ca-certificates' script would have made: one bundle, where OpenSSL and Node look.
  mkdir -p "$root/etc/ssl/certs"
  cat "$root"/usr/share/ca-certificates/*/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/usr/share/{man,info,lintian} "$root"/usr/bin/{openssl,c_rehash} "$root"/var/cache/* "$root"/var/lib/apt
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  install -D -m 0755 "$NODE_BIN" "$root/nodejs/bin/node"
  commit_rootfs "$RUNTIME_BASE" "$root" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --user 65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]'
}

current "$DEPS_BASE" || make_deps_base
current "$RUNTIME_BASE" || make_runtime_base

# RUN npm ci reaches the registry with the CAs this machine trusts (an egress proxy may re-sign
# TLS): mounted for the build only, through npm's global config, so nothing of it is committed.
build_mounts=()
HOST_CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [ -f "$HOST_CA" ]; then
  printf 'cafile=/run/tiercache-build/ca.crt\nupdate-notifier=false\n' >"$WORK/npmrc"
  build_mounts=(--volume "$HOST_CA:/run/tiercache-build/ca.crt:ro" --volume "$WORK/npmrc:/usr/local/etc/npmrc:ro")
fi

say "building $TAG from the Dockerfile (pulls off)"
buildah bud --quiet --pull=never --isolation chroot --layers --force-rm "${build_mounts[@]}" --tag "$TAG" . >/dev/null
# Intermediate stages and replaced tags leave dangling images; they are only disk.
buildah rmi --prune >/dev/null 2>&1 || true
say "built $TAG: $(buildah images --format '{{.Size}}' "$TAG" | head -1)"
