#!/bin/sh
# Installs sqs-archive from an unpacked dist tarball (run it from the
# tarball's top directory, as root for the default places):
#
#   deploy/install.sh [--prefix DIR] [--sysconfdir DIR] [--destdir DIR]
#                     [--units [--unitdir DIR]] [--uninstall]
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
#   $PREFIX/share/doc/sqs-archive/  README.md, ARCHITECTURE.md, INSTALL.md, docs/*.md
#   $PREFIX/share/man/man1/         the three programs' man pages
#   $PREFIX/share/bash-completion/completions/, $PREFIX/share/zsh/site-functions/,
#   $PREFIX/share/fish/vendor_completions.d/   shell completions
#
# --destdir stages everything under DIR (for packaging, or to look first).
# It creates no user and enables nothing: deploy/INSTALL.md does that.
#
# --units also copies the systemd units into --unitdir (default
# /etc/systemd/system). An upgrade refreshes the units an earlier run
# installed there, and only those: a unit whose content is still what we
# wrote is replaced; one an administrator changed is left alone, with a
# warning. Run `systemctl daemon-reload` afterwards.
#
# Every file installed is listed, with its SHA-256, in
# $PREFIX/share/sqs-archive/installed.sha256. --uninstall removes the files
# listed there whose content is unchanged (changed ones are kept and named),
# then the empty directories; the configuration in SYSCONFDIR (aws.json,
# aws.env) is never removed.
set -eu
prefix=/usr/local
sysconfdir=/etc/sqs-archive
destdir=
units=false
unitdir=/etc/systemd/system
uninstall=false
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --sysconfdir) sysconfdir=${2:?--sysconfdir needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --units) units=true; shift ;;
    --unitdir) unitdir=${2:?--unitdir needs a directory}; shift 2 ;;
    --uninstall) uninstall=true; shift ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
case $prefix$sysconfdir$unitdir in *'#'* | *' '*) echo "install.sh: paths must not contain # or spaces" >&2; exit 64 ;; esac
manifest=$destdir$prefix/share/sqs-archive/installed.sha256
sum() { sha256sum "$1" | cut -d' ' -f1; }

if $uninstall; then
    [ -f "$manifest" ] || { echo "install.sh: nothing to uninstall: $manifest not found" >&2; exit 66; }
    kept=0
    while read -r digest path; do
        [ -n "$path" ] || continue
        target=$destdir$path
        if [ ! -e "$target" ] && [ ! -L "$target" ]; then continue; fi
        if [ -f "$target" ] && [ ! -L "$target" ] && [ "$(sum "$target")" = "$digest" ]; then
            rm -f "$target"
        else
            echo "install.sh: kept $path: changed since it was installed" >&2
            kept=$((kept + 1))
        fi
    done <"$manifest"
    rm -f "$manifest"
    for d in "$destdir$prefix/share/sqs-archive/deploy/prometheus" "$destdir$prefix/share/sqs-archive/deploy/grafana" \
        "$destdir$prefix/share/sqs-archive/deploy" "$destdir$prefix/share/sqs-archive/schemas" \
        "$destdir$prefix/share/sqs-archive" "$destdir$prefix/share/doc/sqs-archive"; do
        rmdir "$d" 2>/dev/null || true
    done
    echo "install.sh: uninstalled ($kept changed files kept); configuration left in $destdir$sysconfdir"
    exit 0
fi

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
for f in README.md ARCHITECTURE.md deploy/INSTALL.md docs/*.md; do
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
# The units in --unitdir: first install, or the refresh of ones we installed.
unit_names="sqs-archive-poll.service sqs-archive-poll.timer sqs-archive-poll-loop.service sqs-archive-notify@.service"
previous=$(mktemp)
trap 'rm -f "$previous"' EXIT
[ -f "$manifest" ] && cp "$manifest" "$previous"
units_dir=$destdir$unitdir
refreshed=
for u in $unit_names; do
    target=$units_dir/$u
    was=$(awk -v p="$unitdir/$u" '$2 == p {print $1}' "$previous")
    if [ -e "$target" ] || [ -L "$target" ]; then
        if [ -n "$was" ] && [ -f "$target" ] && [ ! -L "$target" ] && [ "$(sum "$target")" = "$was" ]; then
            install -m 644 "$share/deploy/$u" "$target"
            refreshed="$refreshed $u"
        elif $units || [ -n "$was" ]; then
            echo "install.sh: left $unitdir/$u alone: it is not the unit an earlier install wrote (changed by hand?)" >&2
        fi
    elif $units; then
        install -d -m 755 "$units_dir"
        install -m 644 "$share/deploy/$u" "$target"
        refreshed="$refreshed $u"
    fi
done

# What this install wrote, for upgrades and --uninstall (configuration excluded).
{
    for f in "$bin"/sqs_archive "$bin"/poll_messages "$bin"/process_message "$share"/schemas/* \
        "$share"/deploy/* "$share"/deploy/prometheus/* "$share"/deploy/grafana/* "$doc"/* \
        "$destdir$prefix"/share/man/man1/sqs_archive.1 "$destdir$prefix"/share/man/man1/poll_messages.1 \
        "$destdir$prefix"/share/man/man1/process_message.1 \
        "$destdir$prefix"/share/bash-completion/completions/sqs_archive \
        "$destdir$prefix"/share/bash-completion/completions/poll_messages \
        "$destdir$prefix"/share/bash-completion/completions/process_message \
        "$destdir$prefix"/share/zsh/site-functions/_sqs_archive "$destdir$prefix"/share/zsh/site-functions/_poll_messages \
        "$destdir$prefix"/share/zsh/site-functions/_process_message \
        "$destdir$prefix"/share/fish/vendor_completions.d/sqs_archive.fish \
        "$destdir$prefix"/share/fish/vendor_completions.d/poll_messages.fish \
        "$destdir$prefix"/share/fish/vendor_completions.d/process_message.fish; do
        [ -f "$f" ] && echo "$(sum "$f") ${f#"$destdir"}"
    done
    for u in $unit_names; do
        target=$units_dir/$u
        case " $refreshed " in
        *" $u "*) echo "$(sum "$target") $unitdir/$u" ;;
        *) awk -v p="$unitdir/$u" '$2 == p' "$previous" ;;
        esac
    done
} >"$manifest.new"
mv "$manifest.new" "$manifest"
chmod 644 "$manifest"
echo "install.sh: binaries in $bin, configuration in $etc, units and cron/logrotate files in $share/deploy${refreshed:+; units installed or refreshed in $unitdir:$refreshed}"
