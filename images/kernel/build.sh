#!/bin/bash
# Builds the winsim guest kernel (an uncompressed x86-64 vmlinux booted by
# QEMU through its PVH entry) from Debian's linux-source-6.1 package:
# `make tinyconfig` + winsim.config, everything built in, no modules.
#
# Usage: build.sh [--cache DIR] [--check] [--jobs N]
#   --cache DIR  cache root (default ${CHAOSLAB_CACHE_DIR:-$HOME/.cache/chaoslab})
#   --check      do not build: print the cached vmlinux path and exit 0, or exit 3
#   --jobs N     parallel make jobs (default: number of CPUs)
#
# The result is cached at <cache>/kernel/<hash>/vmlinux, where <hash> is the
# sha256 of (linux-source-6.1 package version, winsim.config, this script,
# patches/*.patch).
# The last line on stdout is always the vmlinux path; progress goes to stderr.
# The build is deterministic: timestamp, user, host and build number are fixed.
set -euo pipefail

readonly SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly FRAGMENT="${SCRIPT_DIR}/winsim.config"
readonly SOURCE_PACKAGE="linux-source-6.1"
readonly SOURCE_TARBALL="/usr/src/linux-source-6.1.tar.xz"
readonly SOURCE_TOPDIR="linux-source-6.1"

die() { echo "kernel/build.sh: error: $*" >&2; exit 1; }
log() { echo "kernel/build.sh: $*" >&2; }

cache_root="${CHAOSLAB_CACHE_DIR:-${HOME}/.cache/chaoslab}"
check_only=0
jobs="$(nproc)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cache) [[ $# -ge 2 && -n "$2" ]] || die "--cache needs a directory"
             cache_root="$2"; shift 2 ;;
    --check) check_only=1; shift ;;
    --jobs)  [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive integer, got '${2:-}'"
             jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (usage: build.sh [--cache DIR] [--check] [--jobs N])" ;;
  esac
done

# Absolute: the build runs in other directories (a relative --cache broke merge_config.sh).
cache_root="$(realpath -m -- "${cache_root}")"
[[ -f "${FRAGMENT}" ]] || die "missing config fragment ${FRAGMENT}"
pkg_version="$(dpkg-query -W -f='${Version}' "${SOURCE_PACKAGE}" 2>/dev/null)" ||
  die "package ${SOURCE_PACKAGE} is not installed (apt-get install ${SOURCE_PACKAGE})"
[[ -n "${pkg_version}" ]] || die "package ${SOURCE_PACKAGE} has no version (not installed?)"

# Our source patches, applied in name order.
shopt -s nullglob
patches=("${SCRIPT_DIR}"/patches/*.patch)
shopt -u nullglob
patches_hash="$(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)"

hash="$( { printf '%s\n' "${SOURCE_PACKAGE} ${pkg_version}"; cat "${FRAGMENT}" "${BASH_SOURCE[0]}" "${patches[@]}"; } |
        sha256sum | cut -d' ' -f1)"
kernel_cache="${cache_root}/kernel"
out_dir="${kernel_cache}/${hash}"
vmlinux="${out_dir}/vmlinux"

if [[ -f "${vmlinux}" ]]; then
  echo "${vmlinux}"
  exit 0
fi
if [[ "${check_only}" == 1 ]]; then
  log "not cached: ${vmlinux}"
  exit 3
fi

[[ -r "${SOURCE_TARBALL}" ]] || die "cannot read ${SOURCE_TARBALL} (package ${SOURCE_PACKAGE})"
for tool in make gcc flex bison bc tar xz; do
  command -v "${tool}" >/dev/null || die "'${tool}' not found (build deps: build-essential flex bison bc libelf-dev libssl-dev)"
done

mkdir -p "${kernel_cache}"
# One build at a time per cache: the source tree and object dir are shared.
exec 9>"${kernel_cache}/.lock"
log "waiting for ${kernel_cache}/.lock"
flock 9
if [[ -f "${vmlinux}" ]]; then  # Built by whoever held the lock.
  echo "${vmlinux}"
  exit 0
fi

# Extract the source once per package version; rename makes it atomic.
# The tree then carries our patches; a record of which ones lets a patch
# change be undone and redone in place, so make rebuilds only what changed.
src_dir="${kernel_cache}/src/${pkg_version}/${SOURCE_TOPDIR}"
patch_record="${src_dir}/.winsim-patches"
applied_hash="$(cat "${src_dir}/.winsim-patches-hash" 2>/dev/null || echo none)"
if [[ -f "${src_dir}/Makefile" && "${applied_hash}" != "${patches_hash}" ]]; then
  log "source patches changed: reverting the old ones"
  echo dirty > "${src_dir}/.winsim-patches-hash"
  reverted=1
  if [[ "${applied_hash}" != "dirty" ]]; then
    for p in $(ls -r "${patch_record}"/*.patch 2>/dev/null); do
      patch -s -R -p1 -d "${src_dir}" < "${p}" >&2 || { reverted=0; break; }
    done
  else
    reverted=0
  fi
  if [[ "${reverted}" == 0 ]]; then
    log "cannot revert old patches: extracting a fresh tree"
    rm -rf "${src_dir}"
  fi
fi
if [[ ! -f "${src_dir}/Makefile" ]]; then
  log "extracting ${SOURCE_TARBALL}"
  tmp_src="$(mktemp -d "${kernel_cache}/src.tmp.XXXXXX")"
  tar -xJf "${SOURCE_TARBALL}" -C "${tmp_src}"
  [[ -f "${tmp_src}/${SOURCE_TOPDIR}/Makefile" ]] || die "${SOURCE_TARBALL} has no ${SOURCE_TOPDIR}/Makefile"
  mkdir -p "$(dirname "${src_dir}")"
  rm -rf "${src_dir}"
  mv "${tmp_src}/${SOURCE_TOPDIR}" "${src_dir}"
  rmdir "${tmp_src}"
fi

if [[ "$(cat "${src_dir}/.winsim-patches-hash" 2>/dev/null || echo none)" != "${patches_hash}" ]]; then
  echo dirty > "${src_dir}/.winsim-patches-hash"  # An interrupted run re-extracts.
  rm -rf "${patch_record}"
  mkdir -p "${patch_record}"
  for p in "${patches[@]}"; do
    log "applying $(basename "${p}")"
    patch -s -p1 --forward -d "${src_dir}" < "${p}" >&2 || die "patch ${p} does not apply to ${SOURCE_PACKAGE} ${pkg_version}"
    cp "${p}" "${patch_record}/"
  done
  echo "${patches_hash}" > "${src_dir}/.winsim-patches-hash"
fi

# One object dir per source version, reused across fragment changes so that
# a config tweak rebuilds only what it touches (make tracks config deps).
obj_dir="${kernel_cache}/obj/${pkg_version}"
mkdir -p "${obj_dir}"

export KBUILD_BUILD_TIMESTAMP="2024-07-19 04:09:00 UTC"
export KBUILD_BUILD_USER="chaoslab"
export KBUILD_BUILD_HOST="winsim"
export KBUILD_BUILD_VERSION="1"
export ARCH=x86_64
unset CROSS_COMPILE KCONFIG_CONFIG KBUILD_OUTPUT || true
kmake() { nice -n 10 make -s -C "${src_dir}" O="${obj_dir}" "$@" >&2; }

log "configuring: tinyconfig + $(basename "${FRAGMENT}")"
kmake tinyconfig >/dev/null 2>&1 || kmake tinyconfig  # Rerun to show why it failed.
(cd "${obj_dir}" && nice -n 10 "${src_dir}/scripts/kconfig/merge_config.sh" -m -O "${obj_dir}" \
  "${obj_dir}/.config" "${FRAGMENT}" >/dev/null 2>&1) || die "merge_config.sh failed on ${FRAGMENT}"
kmake olddefconfig

# Every option the fragment asks for must be in the final .config exactly as
# written; Kconfig silently drops options whose dependencies are missing.
missing=0
while IFS= read -r line; do
  if [[ "${line}" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    want="${line}"
  elif [[ "${line}" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    want="${line}"
    # "not set" is also satisfied when the symbol is absent (unreachable).
    grep -q "^${BASH_REMATCH[1]}=" "${obj_dir}/.config" || continue
  else
    continue
  fi
  if ! grep -qxF -- "${want}" "${obj_dir}/.config"; then
    name="${BASH_REMATCH[1]}"
    got="$(grep -E "^(# )?${name}[= ]" "${obj_dir}/.config" || echo "(absent)")"
    log "config mismatch: wanted '${want}', got '${got}'"
    missing=1
  fi
done < "${FRAGMENT}"
[[ "${missing}" == 0 ]] || die "the final .config does not honour ${FRAGMENT} (see above)"

log "building vmlinux with ${jobs} jobs (nice 10)"
start="$(date +%s)"
kmake -j"${jobs}" vmlinux
log "vmlinux built in $(( $(date +%s) - start )) s"

tmp_out="$(mktemp -d "${kernel_cache}/out.tmp.XXXXXX")"
cp "${obj_dir}/vmlinux" "${tmp_out}/vmlinux"
cp "${obj_dir}/.config" "${tmp_out}/config"
printf '%s\n' "${SOURCE_PACKAGE} ${pkg_version}" > "${tmp_out}/source-version"
rm -rf "${out_dir}"
mv "${tmp_out}" "${out_dir}"
echo "${vmlinux}"
