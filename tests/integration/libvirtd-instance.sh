#!/bin/sh
# Runs one private libvirtd (in the foreground: the caller keeps its pid) acting as a hypervisor of
# its own, for the libvirt integration tests. Usage: libvirtd-instance.sh DIR
#
# libvirtd as root always uses the system paths (/run/libvirt, /var/lib/libvirt, /etc/libvirt...),
# so two of them would share state. Each instance therefore runs in a private mount namespace with
# DIR's folders bound over those paths (a tmpfs over /run, DIR/run as /run/libvirt: a restarted
# daemon finds the status of the QEMUs it left running and reattaches); only its sockets, in DIR/sock, are
# reached from outside, by `qemu:///system?socket=DIR/sock/libvirt-sock`. A system libvirtd, if
# one runs, is not touched: nothing outside the namespace changes. QEMUs it starts stay in the
# namespace, and see /tmp (the lab's files) as everyone does.
#
# qemu.conf: QEMU runs as root without a security driver (the lab's run folders are 0700 root),
# logs without virtlogd, and without seccomp's spawn=deny, which would stop the guestfwd relay.
set -eu
D=$1
mkdir -p "$D/run" "$D/lib" "$D/cache" "$D/log" "$D/sock"
rm -rf "$D/etc"
mkdir -p "$D/etc/qemu"
cat > "$D/etc/libvirtd.conf" <<EOC
unix_sock_dir = "$D/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$D/libvirtd.log"
EOC
cat > "$D/etc/qemu.conf" <<EOC
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
seccomp_sandbox = 0
cgroup_controllers = [ "devices", "memory", "blkio", "cpuset", "cpuacct" ]
EOC
exec unshare --mount --propagation private sh -c "
  mount -t tmpfs -o mode=0755 none /run && mkdir -p /run/libvirt &&
  mount --bind '$D/run' /run/libvirt &&
  mount --bind '$D/lib' /var/lib/libvirt && mount --bind '$D/cache' /var/cache/libvirt &&
  mount --bind '$D/log' /var/log/libvirt && mount --bind '$D/etc' /etc/libvirt &&
  exec libvirtd -f /etc/libvirt/libvirtd.conf"
