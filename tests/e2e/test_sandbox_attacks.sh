# A hostile base image (the test bed's testbed/hostile: the python image
# plus char 1:8 and block 7:0 nodes and a setuid-root busybox) and a build
# step that tries to escape: read or write a device node, make one, open
# packet and raw sockets, keyctl, bpf, unshare a user namespace, mount,
# ptrace a host process and the sandbox's init, write outside the rootfs
# through /proc/1/root, connect to a test bed service the spec does not
# name, reach an abstract unix socket the test opened on the host (the
# default --network private; test_sandbox_network covers the rest of the
# network settings). Each must fail with the kernel's answer, in root,
# subuid-range and single-id mode, while apt and pip work in the same
# build. The cache holds no device node, and the layer that carries them is
# pushed byte for byte. --security-opt seccomp=unconfined lifts the filter
# (keyctl works) but not the capability bound (AF_PACKET stays refused).
#
# One function per attack (attack_NAME), judging the probe's line for
# NAME (testdata/sandbox/probe.py): add both to extend.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_IMG_HOSTILE:?the test bed has no hostile image (tools/testbed up)}"

ensure_user kilne2e-range range
ensure_user kilne2e-single single
KILN=$(kiln_for_users)
HOSTILE=$KILN_TB_PLAIN/$KILN_TB_IMG_HOSTILE

# A host process to attack, a host directory to write into, a loopback
# service the spec does not name (the basic-auth registry) and an abstract
# unix socket that answers on the host.
sleep 900 &
HOST_PID=$!
start_host_abstract_socket
trap 'kill "$HOST_PID" "$ABSTRACT_PID" 2>/dev/null; rm -rf "$T"' EXIT
wait_host_abstract_socket
UNNAMED=$KILN_TB_BASIC
OUTSIDE="$T/outside"
mkdir -p "$OUTSIDE"
chmod 777 "$OUTSIDE"

# The probe's verdict on one attack: the errno name it was refused with.
# Fails when the attack got through or its line is missing.
refused_with() { # user attack
        local line
        line=$(grep -a "probe: $2: " "$T/$1/build.log" | head -n1) ||
                fail "$1: no probe line for $2 (see $T/$1/build.log)"
        case "$line" in
        *": refused "*) echo "${line#*: refused }" | cut -d' ' -f1 ;;
        *) fail "$1: attack $2 got through: ${line#*probe: }" ;;
        esac
}
# The attack failed with one of the named errors.
expect_refused() { # user attack errno...
        local user=$1 attack=$2 got
        shift 2
        got=$(refused_with "$user" "$attack")
        local e
        for e in "$@"; do
                if [ "$got" = "$e" ]; then
                        pass "$user: $attack refused: $got"
                        return 0
                fi
        done
        fail "$user: $attack refused with $got, want one of: $*"
}

# A node from a layer is not in the snapshot (ENOENT); one that reached a
# layer anyway opens nothing on the nodev root (EACCES).
attack_dev_read() { expect_refused "$1" dev_read ENOENT EACCES; }
attack_dev_write() { expect_refused "$1" dev_write ENOENT EACCES; }
# no CAP_MKNOD (EPERM); single-id mode pretends and nothing is there
attack_dev_mknod() { expect_refused "$1" dev_mknod EPERM ENOENT; }
attack_af_packet() { expect_refused "$1" af_packet EPERM; }
attack_raw_socket() { expect_refused "$1" raw_socket EPERM; }
attack_keyctl() { expect_refused "$1" keyctl EPERM; }
attack_bpf() { expect_refused "$1" bpf EPERM; }
attack_unshare_user() { expect_refused "$1" unshare_user EPERM; }
attack_mount() { expect_refused "$1" mount EPERM; }
# the host's processes are not in the sandbox's pid namespace
attack_ptrace_host() { expect_refused "$1" ptrace_host ESRCH; }
attack_ptrace_init() { expect_refused "$1" ptrace_init EPERM; }
attack_proc_root_write() {
        expect_refused "$1" proc_root_write ENOENT EACCES
        [ ! -e "$OUTSIDE/pwned" ] || fail "$1: a step wrote $OUTSIDE/pwned on the host"
}
# the step has a network namespace of its own: nothing listens on its
# loopback, and the host's abstract sockets are not in it
attack_loopback_service() { expect_refused "$1" loopback_service ECONNREFUSED; }
attack_abstract_socket() { expect_refused "$1" abstract_socket ECONNREFUSED; }
# What must keep working: ping over an ICMP datagram socket (kiln opens
# ping_group_range in the step's network namespace, as Podman does, since
# CAP_NET_RAW is gone).
works_icmp_echo() {
        grep -aq "probe: icmp_echo: ALLOWED echo reply" "$T/$1/build.log" ||
                fail "$1: ping does not work: $(grep -a 'probe: icmp_echo' "$T/$1/build.log")"
        pass "$1: ping works without CAP_NET_RAW"
}
ATTACKS="dev_read dev_write dev_mknod af_packet raw_socket keyctl bpf unshare_user mount
         ptrace_host ptrace_init proc_root_write loopback_service abstract_socket"
# The probe's arguments: each attack, with its target where it needs one.
probe_args() { # attacks...
        local a
        for a in "$@"; do
                case $a in
                loopback_service) printf ' %s=%s' "$a" "$UNNAMED" ;;
                abstract_socket) printf ' %s=%s' "$a" "$ABSTRACT" ;;
                *) printf ' %s' "$a" ;;
                esac
        done
}

build_as() { # user attacks [kiln build options]
        local user=$1 attacks=$2 dir="$T/$1"
        shift 2
        rm -f "$dir/build.log" "$dir/result.json"
        mkdir -p "$dir/probe" "$dir/cache"
        cp "$KILN_SRC/testdata/sandbox/probe.py" "$dir/probe/"
        cat >"$dir/spec.yaml" <<SPEC
name: attacks-$user
registry: $KILN_TB_PLAIN/e2e
base_image: $HOSTILE
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
copy:
  - probe
commands:
  - python3 /root/probe/probe.py $HOST_PID $OUTSIDE$(probe_args $attacks)
  - test -u /opt/hostile/suid-busybox && echo setuid kept
  - jq --version && kiln-hello
SPEC
        # not -R into the cache: chown clears the setuid bits of a snapshot
        chown "$user" "$dir" "$dir/cache"
        chown -R "$user" "$dir/probe" "$dir/spec.yaml"
        (cd "$dir" && as_user "$user" env KILN_CACHE="$dir/cache" "$KILN" build --json --force \
                --push "$@" spec.yaml >"$dir/result.json" 2>"$dir/build.log") ||
                { cat "$dir/build.log" >&2; fail "build as $user"; }
}

# apt and pip ran in the same sandbox, the image holds what they
# installed, and the layer with the device nodes went out unchanged.
check_image() { # user
        local user=$1 dir="$T/$1"
        grep -q '^\[commands\] setuid kept$' "$dir/build.log" || fail "$user: the setuid bit is gone"
        grep -q '^\[commands\] jq-1.6$' "$dir/build.log" || fail "$user: jq (apt) does not run"
        grep -q '^\[commands\] hello from kiln-hello 1.1.0$' "$dir/build.log" ||
                fail "$user: kiln-hello (pip) does not run"
        local name
        name=$(jq -r .image "$dir/result.json")
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$HOSTILE" | jq -c .Layers >"$dir/base.layers"
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$name" |
                jq -c --argjson n "$(jq length "$dir/base.layers")" '.Layers[:$n]' >"$dir/image.layers"
        assert_eq "$(cat "$dir/image.layers")" "$(cat "$dir/base.layers")" \
                "$user: the base's layers (one with device nodes) as pushed"
        local devs
        devs=$(find "$dir/cache" \( -type c -o -type b \) -printf '%p %Y\n' 2>/dev/null | head -n5)
        [ -z "$devs" ] || fail "$user: device nodes in the cache: $devs"
        pass "$user: apt and pip work; no device node in the cache; base layers pushed unchanged"
}

for user in root kilne2e-range kilne2e-single; do
        build_as "$user" "$ATTACKS icmp_echo"
        for a in $ATTACKS; do
                "attack_$a" "$user"
        done
        works_icmp_echo "$user"
        check_image "$user"
done

# The escape hatch: no filter, but the capability bound stays. Only the
# commands line differs from root's build: the steps before it are cached.
build_as root "keyctl af_packet mount dev_read" --security-opt seccomp=unconfined
grep -q "without the system call filter" "$T/root/build.log" || fail "unconfined: no warning"
grep -aq "probe: keyctl: ALLOWED" "$T/root/build.log" ||
        fail "unconfined: keyctl still refused: $(grep -a 'probe: keyctl' "$T/root/build.log")"
attack_af_packet root
attack_mount root
attack_dev_read root
pass "seccomp=unconfined lifts the filter only"
