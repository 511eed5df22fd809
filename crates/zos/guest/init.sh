#!/bin/busybox sh
# The guest side of the node agent's VM contract (crates/zos/src/primitives/vm.rs), as the init of
# a VM image's initrd (`tfgrid image vm` puts it there, with busybox and the kernel's virtio and 9p
# modules): it loads the modules, mounts the machine's config and root file system from 9p, brings
# up its network, mounts its volumes, and runs its entrypoint in its root as process 1.
/bin/busybox mkdir -p /bin /proc /sys /dev /newroot /zos
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
    echo "zos-init: $*"
    poweroff -f
}
for module in $(cat /lib/zos/modules); do
    insmod "/lib/zos/$module" || echo "zos-init: loading $module failed"
done
opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro" zos /zos || fail "no zos share"
. /zos/config
mount -t 9p -o "$opts" root /newroot || fail "no root share"
hostname "$ZOS_HOSTNAME"
ip link set lo up
ip link set eth0 up || fail "no network interface"
ip addr add "$ZOS_IP" dev eth0
ip route add default via "$ZOS_GATEWAY"
for mount in $ZOS_MOUNTS; do
    tag=${mount%%:*}
    path=${mount#*:}
    mkdir -p "/newroot$path"
    mount -t 9p -o "$opts" "$tag" "/newroot$path" || fail "cannot mount $tag on $path"
done
for fs in proc sys dev; do
    mkdir -p "/newroot/$fs"
    mount --move "/$fs" "/newroot/$fs"
done
command=${ZOS_ENTRYPOINT:-exec /sbin/init}
. /zos/env
umount /zos
unset ZOS_HOSTNAME ZOS_IP ZOS_GATEWAY ZOS_ENTRYPOINT ZOS_MOUNTS opts
echo "zos-init: running $command"
exec switch_root /newroot /bin/sh -c "$command"
