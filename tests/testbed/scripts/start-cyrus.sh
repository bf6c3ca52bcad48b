#!/bin/bash
# usage: start-cyrus.sh STATE_DIR PORT ['option: value' ...]   (later options replace the defaults)
# Starts an independent Cyrus IMAP 3.6.1 (Debian package, extracted) on 127.0.0.1:PORT inside a private
# mount+pid namespace. Ends by exec'ing `unshare`, so the caller's child is the instance: SIGKILL on
# it tears the whole instance down (unshare ignores SIGTERM).
# Users: $CYRUS_USERS, default "alice:secret bob:bobpw cyrusadmin:adminpw" (cyrusadmin is the admin).
set -euo pipefail
D=$(realpath -m "$1"); PORT=$2; shift 2
CY=${CYRUS_ROOT:?the extracted cyrus-imapd package (cargo xtask test sets it)}
RUNAS=${CYRUS_RUNAS:-mail}            # any existing non-root user; imapd refuses to run as root
TREE=$D/tree                          # $CY is bind-mounted here: /root is 0700, the run-as user can't reach $CY
B=$TREE/usr/lib/cyrus/bin
mkdir -p "$D"/conf/{db,proc,socket,lock,log} "$D"/spool "$D"/sieve "$TREE"
cat > "$D/imapd.conf" <<CONF
configdirectory: $D/conf
partition-default: $D/spool
defaultpartition: default
sievedir: $D/sieve
servername: cyrus.test
cyrus_user: $RUNAS
admins: cyrusadmin
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $D/sasldb2
sasl_mech_list: PLAIN LOGIN
failedloginpause: 0
autocreate_quota: 0
altnamespace: no
unixhierarchysep: no
munge8bit: yes
delete_mode: immediate
expunge_mode: immediate
CONF
# later settings replace earlier ones: Cyrus refuses a config naming an option twice
for l in "$@"; do
  k=${l%%:*}
  grep -v "^$k:" "$D/imapd.conf" > "$D/imapd.conf.tmp" || true
  printf '%s\n' "$l" >> "$D/imapd.conf.tmp"
  mv "$D/imapd.conf.tmp" "$D/imapd.conf"
done
cat > "$D/cyrus.conf" <<CONF
START {
  recover cmd="$B/ctl_cyrusdb -C $D/imapd.conf -r"
}
SERVICES {
  imap cmd="$B/imapd -C $D/imapd.conf" listen="127.0.0.1:$PORT" prefork=0 maxchild=50
}
EVENTS {
}
DAEMON {
  idled cmd="$B/idled -C $D/imapd.conf"
}
CONF
# sasldb realm must equal servername (cyrus.test)
for up in ${CYRUS_USERS:-alice:secret bob:bobpw cyrusadmin:adminpw}; do
  printf '%s' "${up#*:}" | saslpasswd2 -p -c -f "$D/sasldb2" -u cyrus.test "${up%%:*}"
done
chown -R "$RUNAS": "$D"
chmod 755 "$D"
cat > "$D/run.sh" <<SH
#!/bin/sh
set -e
mount --bind $CY $TREE
if [ -n "${CYRUS_SYSLOG_SOCK:-}" ]; then   # optional: a unix datagram socket the caller reads; becomes /dev/log here
  mkdir -p $D/dev-up $D/dev-work
  mount -t overlay overlay -o lowerdir=/dev,upperdir=$D/dev-up,workdir=$D/dev-work /dev
  touch /dev/log && mount --bind ${CYRUS_SYSLOG_SOCK:-} /dev/log
fi
export LD_LIBRARY_PATH=$TREE/usr/lib/x86_64-linux-gnu
# no exec: this root shell stays pid 1 of the pid namespace, so SIGKILL on unshare (--kill-child) kills it
# and the kernel then kills everything in the namespace (master itself loses the parent-death signal
# when it switches to the run-as user)
$B/master -C $D/imapd.conf -M $D/cyrus.conf -p $D/master.pid -L $D/master.log &
wait
SH
chmod 755 "$D/run.sh"
exec unshare --mount --propagation private --pid --fork --kill-child "$D/run.sh" >>"$D/unshare.log" 2>&1
