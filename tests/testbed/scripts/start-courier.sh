#!/bin/bash
# usage: start-courier.sh STATE_DIR PORT   (users from $COURIER_USERS, default "alice:secret bob:bobpw")
# Runs authdaemond + couriertcpd/imaplogin/imapd (Debian courier-imap 5.0.13, extracted) on 127.0.0.1:PORT
# in a private mount+pid namespace where /etc/courier and /run/courier are this instance's own.
# Ends by exec'ing `unshare`, so the caller's child is the instance: SIGKILL on it tears the whole
# instance down (unshare ignores SIGTERM).
set -euo pipefail
D=$(realpath -m "$1"); PORT=$2
CO=${COURIER_ROOT:?the extracted courier-imap package (cargo xtask test sets it)}
UID_=${COURIER_UID:-0}; GID_=${COURIER_GID:-0}      # uid/gid imapd runs as after login (0 works; owns the maildirs)
mkdir -p "$D"/etc-up/courier "$D"/etc-work "$D"/run-up/courier/authdaemon "$D"/run-work "$D"/home
C="$D/etc-up/courier"
cat > "$C/authdaemonrc" <<CONF
authmodulelist="authuserdb"
authmodulelistorig="authuserdb"
daemons=2
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=${COURIER_DEBUG_LOGIN:-0}
DEFAULTOPTIONS=""
LOGGEROPTS=""
CONF
: > "$C/userdb"; chmod 600 "$C/userdb"
for up in ${COURIER_USERS:-alice:secret bob:bobpw}; do
  u=${up%%:*}; pw=${up#*:}; h="$D/home/$u"
  mkdir -p "$h"
  env LD_LIBRARY_PATH="$CO/usr/lib/x86_64-linux-gnu:$CO/usr/lib" "$CO/usr/bin/maildirmake.courier" "$h/Maildir"
  printf '%s\tuid=%s|gid=%s|home=%s|mail=%s/Maildir|systempw=%s\n' "$u" "$UID_" "$GID_" "$h" "$h" \
     "{SHA256}$(printf '%s' "$pw" | openssl dgst -sha256 -binary | base64)" >> "$C/userdb"
  chown -R "$UID_:$GID_" "$h"
done
# userdb.dat (non-password fields) + userdbshadow.dat (password fields), like makeuserdb does
awk -F'\t' '{n=split($2,f,"|"); o=""; for(i=1;i<=n;i++) if (f[i] !~ /^[^=]*pw=/) o=o (o==""?"":"|") f[i]; print $1 "\t" o "|_="} END{print "."}' "$C/userdb" \
  | "$CO/usr/lib/courier/courier-authlib/makedatprog" - "$C/userdb.tmp" "$C/userdb.dat"
( umask 066; awk -F'\t' '{n=split($2,f,"|"); o=""; for(i=1;i<=n;i++) if (f[i] ~ /^[^=]*pw=/) o=o (o==""?"":"|") f[i]; print $1 "\t" o} END{print "."}' "$C/userdb" \
  | "$CO/usr/lib/courier/courier-authlib/makedatprog" - "$C/userdbshadow.tmp" "$C/userdbshadow.dat" )
cat > "$D/run.sh" <<SH
#!/bin/sh
set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir=$D/etc-up,workdir=$D/etc-work /etc
mount -t overlay overlay -o lowerdir=/run,upperdir=$D/run-up,workdir=$D/run-work /run
export LD_LIBRARY_PATH=$CO/usr/lib/x86_64-linux-gnu:$CO/usr/lib:$CO/usr/lib/courier-authlib
export LTDL_LIBRARY_PATH=$CO/usr/lib/courier-authlib
$CO/usr/lib/courier/courier-authlib/authdaemond >>$D/authdaemond.log 2>&1 &
i=0; while [ ! -S /run/courier/authdaemon/socket ] && [ \$i -lt 200 ]; do sleep 0.01; i=\$((i+1)); done
exec env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="\$LD_LIBRARY_PATH" \
  IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE AUTH=PLAIN" \
  IMAP_KEYWORDS=1 IMAP_ACL=1 IMAP_PROXY=0 IMAP_IDLE_TIMEOUT=60 IMAP_MAILBOX_SANITY_CHECK=1 \
  IMAP_DISABLETHREADSORT=0 IMAP_CHECK_ALL_FOLDERS=0 IMAP_OBSOLETE_CLIENT=0 IMAP_UMASK=022 \
  IMAP_USELOCKS=1 IMAP_ENHANCEDIDLE=0 IMAP_TRASHFOLDERNAME=Trash IMAP_EMPTYTRASH= \
  IMAP_MOVE_EXPUNGE_TO_TRASH=0 IMAP_STARTTLS=NO IMAP_TLS_REQUIRED=0 HEADERFROM=X-IMAP-Sender \
  SENDMAIL=/bin/false \
  $CO/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 -maxperip=40 -nodnslookup -noidentlookup -stderr=$D/imapd.log \
     $PORT $CO/usr/lib/courier/courier/imaplogin $CO/usr/bin/imapd Maildir
SH
chmod +x "$D/run.sh"
exec unshare --mount --propagation private --pid --fork --kill-child "$D/run.sh" >>"$D/courier.log" 2>&1
