#!/bin/sh
# Installs sqs-archive from an unpacked dist tarball (run it from the
# tarball's top directory, as root for the default places):
#
#   deploy/install.sh [--prefix DIR] [--sysconfdir DIR] [--destdir DIR]
#
#   $PREFIX/bin/                    sqs_archive, poll_messages, process_message
#                                   (default prefix /usr/local)
#   $SYSCONFDIR/                    aws.example.json, and aws.json and aws.env
#                                   when absent (default /etc/sqs-archive);
#                                   existing files are never overwritten
#   $PREFIX/share/sqs-archive/      schemas/, and deploy/: the crontab, the
#                                   systemd units and the logrotate file, with
#                                   their paths rewritten for this prefix and
#                                   sysconfdir, ready to copy into place
#   $PREFIX/share/doc/sqs-archive/  README.md, ARCHITECTURE.md, INSTALL.md
#   $PREFIX/share/man/man1/         the three programs' man pages
#   $PREFIX/share/bash-completion/completions/, $PREFIX/share/zsh/site-functions/,
#   $PREFIX/share/fish/vendor_completions.d/   shell completions
#
# --destdir stages everything under DIR (for packaging, or to look first).
# It creates no user and enables nothing: deploy/INSTALL.md does that.
set -eu
prefix=/usr/local
sysconfdir=/etc/sqs-archive
destdir=
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --sysconfdir) sysconfdir=${2:?--sysconfdir needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
case $prefix$sysconfdir in *'#'*) echo "install.sh: paths must not contain #" >&2; exit 64 ;; esac
[ -x bin/poll_messages ] && [ -f config/aws.example.json ] ||
    { echo "install.sh: run me from the unpacked tarball's top directory" >&2; exit 66; }

bin=$destdir$prefix/bin
share=$destdir$prefix/share/sqs-archive
doc=$destdir$prefix/share/doc/sqs-archive
etc=$destdir$sysconfdir
install -d -m 755 "$bin" "$share/schemas" "$share/deploy" "$share/deploy/prometheus" "$share/deploy/grafana" "$doc"
install -d -m 750 "$etc"
install -m 755 bin/sqs_archive bin/poll_messages bin/process_message "$bin/"
install -m 644 schemas/*.json "$share/schemas/"
for f in README.md ARCHITECTURE.md deploy/INSTALL.md; do
    if [ -f "$f" ]; then install -m 644 "$f" "$doc/"; fi
done
# Man pages and completions, where man, bash-completion, zsh and fish look.
if [ -d man/man1 ] && [ -d completions ]; then
    man1=$destdir$prefix/share/man/man1
    bashc=$destdir$prefix/share/bash-completion/completions
    zshc=$destdir$prefix/share/zsh/site-functions
    fishc=$destdir$prefix/share/fish/vendor_completions.d
    install -d -m 755 "$man1" "$bashc" "$zshc" "$fishc"
    install -m 644 man/man1/*.1 "$man1/"
    install -m 644 completions/bash/* "$bashc/"
    install -m 644 completions/zsh/_* "$zshc/"
    install -m 644 completions/fish/*.fish "$fishc/"
fi
# The deployment files name /usr/local and /etc/sqs-archive; rewrite them for this install.
for f in crontab.example sqs-archive-poll.service sqs-archive-poll.timer sqs-archive-poll-loop.service \
    sqs-archive-notify@.service logrotate.example; do
    sed -e "s#/usr/local/#$prefix/#g" -e "s#/etc/sqs-archive#$sysconfdir#g" "deploy/$f" >"$share/deploy/$f"
    chmod 644 "$share/deploy/$f"
done
# Alerting rules (with their promtool tests) and the Grafana dashboard, as they are.
install -m 644 deploy/prometheus/*.yml "$share/deploy/prometheus/"
install -m 644 deploy/grafana/*.json "$share/deploy/grafana/"
install -m 640 config/aws.example.json "$etc/aws.example.json"
[ -e "$etc/aws.json" ] || install -m 640 config/aws.example.json "$etc/aws.json"
# The run user reads the keys file through its group (chgrp it after creating the user).
[ -e "$etc/aws.env" ] || install -m 640 /dev/null "$etc/aws.env"
echo "install.sh: binaries in $bin, configuration in $etc, units and cron/logrotate files in $share/deploy"
