#!/usr/bin/env bash
# Regenerate every capture in this folder from scratch (see README.md for what each shows).
#
# Needs: root, Debian 12 with tcpdump openssl nginx curl gnutls-bin nghttp2-client tinyproxy squid
# tshark (dumpcap, editcap) iproute2 ethtool chromium, and `pip install aioquic` for $PYTHON.
# Network: only loopback and veth pairs inside network namespaces this script creates
# (prefix acap_, private 10.99.x.x / fd00:99:: addresses); nothing leaves the machine.
# Every server and client runs under `timeout`; namespaces and their processes are removed
# on exit.  Usage: sudo ./make_captures.sh [NAME_GLOB]   (e.g. 'openssl_*'; default: all)
# Env: OUT (default: this folder), PYTHON (default: python3), KEEP_WORK=1 keeps the scratch dir.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=$HERE/tools
OUT=${OUT:-$HERE}
PY=${PYTHON:-python3}
ONLY=${1:-*}
T0=$(date +%s)
W=$(mktemp -d /tmp/acap.XXXXXX)
chmod 755 "$W"                      # nginx workers run as nobody and read $W/nginx_*/www
NSS=(acap_lo acap_srv acap_cli acap_va acap_vb)
declare -a RESULTS=()

log() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }

cleanup() {
    local ns p
    for ns in "${NSS[@]}"; do
        [ -e "/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
    done
    sleep 0.5
    for ns in "${NSS[@]}"; do
        [ -e "/run/netns/$ns" ] || continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "scratch kept in $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
# one run at a time: the namespaces (acap_*) and ports below are fixed
exec 9>/tmp/alpnsniff_make_captures.lock
flock 9
for t in tcpdump openssl nginx curl gnutls-serv gnutls-cli nghttp tshark dumpcap editcap ip ethtool ss; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done
"$PY" -c 'import aioquic' 2>/dev/null || { echo "$PY lacks aioquic (pip install aioquic)" >&2; exit 1; }
CHROMIUM=$(command -v chromium || true)

# ---------------------------------------------------------------- certificate
# tools/cert.pem is a throwaway self-signed P-256 cert; make a fresh one if it has expired.
if openssl x509 -in "$TOOLS/cert.pem" -noout -checkend 3600 >/dev/null 2>&1; then
    cp "$TOOLS/cert.pem" "$TOOLS/key.pem" "$W/"
else
    log "tools/cert.pem expired: generating a new throwaway certificate"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -keyout "$W/key.pem" -out "$W/cert.pem" -subj /CN=www.example.test \
        -addext subjectAltName=DNS:www.example.test,DNS:quic.example.test,DNS:localhost,IP:127.0.0.1,IP:10.99.0.1 \
        2>/dev/null
fi
CERT=$W/cert.pem
KEY=$W/key.pem
SPKI=$(openssl x509 -in "$CERT" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)
export RCDIR=$W                      # pyssl.py / quic_server.py read cert.pem/key.pem here

# ---------------------------------------------------------------- helpers

# wait_log FILE REGEX [SECONDS]: wait until FILE contains REGEX
wait_log() {
    local i
    for ((i = 0; i < ${3:-10} * 10; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    log "timeout waiting for /$2/ in $1"
    return 1
}

# wait_port NS PORT [t|u]: wait until something listens on PORT (tcp or udp) in NS
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ip netns exec "$1" ss -Hln"${3:-t}" "sport = :$2" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    log "timeout waiting for port $2/${3:-t} in $1"
    return 1
}

# cap_start NS IFACE FILE FILTER [tcpdump options...]: tcpdump in the background -> CAP_PID
# -B 65536 (KiB): with -i any libpcap sizes every ring frame for the 256 KiB snaplen, and the
# default 2 MiB ring then holds only ~7 packets: bursts on lo were dropped by the kernel.
cap_start() {
    local ns=$1 ifc=$2 f=$3 flt=$4
    shift 4
    CAP_LOG=$W/tcpdump.$(basename "$f").log
    local -a fa=()
    [ -n "$flt" ] && fa=("$flt")
    ip netns exec "$ns" timeout 120 tcpdump -i "$ifc" -s 0 -B 65536 -U --immediate-mode -Z root -n \
        "$@" -w "$f" "${fa[@]}" >"$CAP_LOG" 2>&1 &
    CAP_PID=$!
    wait_log "$CAP_LOG" "listening on" 5
}
# cap_stop [LOG]: let the last packets arrive, stop tcpdump cleanly (SIGTERM flushes the
# file), then fail if the kernel dropped any packet
cap_stop() {
    local lg=${1:-$CAP_LOG}
    sleep 0.7
    kill -TERM "$CAP_PID" 2>/dev/null
    wait "$CAP_PID" 2>/dev/null
    if grep -q 'packets dropped by kernel' "$lg"; then
        grep -q '^0 packets dropped by kernel' "$lg" && return 0
    elif grep -q 'received/dropped' "$lg"; then                    # dumpcap
        grep 'received/dropped' "$lg" | grep -qv ': [0-9]*/0 ' || return 0
    fi
    log "capture incomplete: $(grep -E 'dropped' "$lg" | tr '\n' ' ')"
    CAP_BAD=1
    return 1
}

# srv_start NAME NS PORT t|u CMD...: server in the background (bounded by timeout) -> SRV_PID
srv_start() {
    local name=$1 ns=$2 port=$3 proto=$4
    shift 4
    ip netns exec "$ns" timeout 60 "$@" >"$W/srv.$name.log" 2>&1 &
    SRV_PID=$!
    wait_port "$ns" "$port" "$proto"
}
srv_stop() {
    kill -TERM "${1:-$SRV_PID}" 2>/dev/null
    wait "${1:-$SRV_PID}" 2>/dev/null
    return 0
}

# cli NAME NS CMD...: client, bounded to 20 s, output in $W/cli.NAME.log
cli() {
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" timeout 20 "$@" >>"$W/cli.$name.log" 2>&1 </dev/null
}
# cli_in NAME NS INPUT CMD...: same with INPUT on stdin
cli_in() {
    local name=$1 ns=$2 input=$3
    shift 3
    printf '%b' "$input" | ip netns exec "$ns" timeout 20 "$@" >>"$W/cli.$name.log" 2>&1
}

GET='GET / HTTP/1.0\r\nHost: www.example.test\r\n\r\n'
OSRV=(openssl s_server -cert "$CERT" -key "$KEY" -www)
OCLI=(openssl s_client -ign_eof)

# ---------------------------------------------------------------- namespaces
setup_netns() {
    local ns
    for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    for ns in "${NSS[@]}"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    # acap_srv (10.99.0.1, fd00:99::1) <- veth MTU 1500 -> acap_cli (10.99.0.2, fd00:99::2)
    ip link add ac-s type veth peer name ac-c
    ip link set ac-s netns acap_srv
    ip link set ac-c netns acap_cli
    local pair
    for pair in acap_srv:ac-s:1 acap_cli:ac-c:2; do
        IFS=: read -r ns dev n <<<"$pair"
        ip -n "$ns" link set "$dev" addrgenmode none mtu 1500
        ip -n "$ns" addr add "10.99.0.$n/24" dev "$dev"
        ip -n "$ns" addr add "fd00:99::$n/64" dev "$dev" nodad
        ip -n "$ns" link set "$dev" up
        # offloads off: otherwise TSO/GSO hands tcpdump one frame larger than the MTU
        ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off sg off tx off rx off >/dev/null 2>&1
    done
    # acap_va <- veth, no IP -> acap_vb: layer-2 link for the 802.1Q / QinQ captures
    for ns in acap_va acap_vb; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip link add ac-va type veth peer name ac-vb
    ip link set ac-va netns acap_va
    ip link set ac-vb netns acap_vb
    for pair in acap_va:ac-va acap_vb:ac-vb; do
        IFS=: read -r ns dev <<<"$pair"
        ip -n "$ns" link set "$dev" mtu 1600 promisc on up
        ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off sg off tx off rx off \
            rxvlan off txvlan off >/dev/null 2>&1
    done
}

# nginx_start NAME NS: nginx on 8443 (h2), 8444 (http/1.1 only), 8445 (h2, TLS 1.2 only)
nginx_start() {
    local d=$W/nginx_$1
    mkdir -p "$d/www" "$d/tmp"
    printf '<html><body>alpnsniff test page</body></html>\n' >"$d/www/index.html"
    chmod -R a+rX "$d"
    sed -e "s#@DIR@#$d#g" -e "s#@CERT@#$CERT#g" -e "s#@KEY@#$KEY#g" "$TOOLS/nginx.conf.in" >"$d/nginx.conf"
    ip netns exec "$2" timeout 300 nginx -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
    NGINX_PID=$!
    wait_port "$2" 8443 && wait_port "$2" 8445
}

# ---------------------------------------------------------------- captures
# Each c_NAME writes $W/out/NAME (+ NAME's .keys) and returns non-zero on failure.
O=$W/out
mkdir -p "$O"

# openssl_pair NAME PORT "SERVER ARGS" "CLIENT ARGS" [KEYS]: one s_server/s_client exchange on lo
openssl_pair() {
    local name=$1 port=$2 sargs=$3 cargs=$4 keys=${5:-}
    local -a ka=()
    [ -n "$keys" ] && ka=(-keylogfile "$O/$name.keys")
    cap_start acap_lo lo "$O/$name.pcap" "tcp port $port" || return 1
    # shellcheck disable=SC2086
    srv_start "$name" acap_lo "$port" t "${OSRV[@]}" -accept "$port" -naccept 1 $sargs || return 1
    # shellcheck disable=SC2086
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect "127.0.0.1:$port" -servername www.example.test \
        "${ka[@]}" $cargs
    srv_stop
    cap_stop
}

c_openssl_tls12_h2() {
    openssl_pair openssl_tls12_h2 4431 "-alpn h2,http/1.1 -tls1_2" "-alpn h2,http/1.1"
}
c_openssl_tls12_h2_nanosec() {
    local name=openssl_tls12_h2_nanosec
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4431" --time-stamp-precision=nano || return 1
    srv_start "$name" acap_lo 4431 t "${OSRV[@]}" -accept 4431 -naccept 1 -alpn h2,http/1.1 -tls1_2 ||
        return 1
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4431 -servername www.example.test \
        -alpn h2,http/1.1
    srv_stop
    cap_stop
}
c_openssl_tls13_h2() {
    openssl_pair openssl_tls13_h2 4431 "-alpn h2,http/1.1" "-alpn h2,http/1.1" keys
}
c_openssl_tls12_alert120() {
    openssl_pair openssl_tls12_alert120 4431 "-alpn foo -tls1_2" "-alpn h2,http/1.1"
}
c_openssl_tls13_alert120() {
    openssl_pair openssl_tls13_alert120 4431 "-alpn foo" "-alpn h2,http/1.1"
}
c_openssl_tls12_npn() {
    openssl_pair openssl_tls12_npn 4431 "-nextprotoneg h2,http/1.1 -tls1_2" \
        "-nextprotoneg h2,http/1.1" keys
}
c_openssl_tls12_no_server_alpn() {
    openssl_pair openssl_tls12_no_server_alpn 4431 "-tls1_2" "-alpn h2,http/1.1"
}
c_openssl_tls13_hrr() {
    openssl_pair openssl_tls13_hrr 4431 "-alpn h2,http/1.1 -groups P-384" \
        "-alpn h2,http/1.1 -groups X25519:P-384" keys
}
c_openssl_tls12_split_records() {
    # 30 IANA-registered ALPN names + a 195-byte SNI + an ffdhe3072 key share make a ~1100-byte
    # ClientHello (P-256 listed: TLS 1.2 needs the ECDSA cert's curve); -max_send_frag 512 cuts it into 3 records, the cut falling inside the ALPN list.
    local alpn=h2,http/1.1,spdy/3,stun.turn,webrtc,c-webrtc,ftp,imap,pop3,managesieve,coap
    alpn+=,xmpp-client,xmpp-server,acme-tls/1,mqtt,dot,ntske/1,sunrpc,h3,smb,irc,nntp,nnsp,doq
    alpn+=,sip/2,tds/8.0,dicom,postgresql,radius/1.0,radius/1.1
    local l=abcdefghijklmnopqrstuvwxyz
    local sni=record-splitting-test-label-one-$l.record-splitting-test-label-two-$l
    sni+=.record-splitting-test-label-three-$l.www.example.test
    local name=openssl_tls12_split_records
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4431" || return 1
    srv_start "$name" acap_lo 4431 t "${OSRV[@]}" -accept 4431 -naccept 1 -alpn h2,http/1.1 -tls1_2 ||
        return 1
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4431 -servername "$sni" \
        -alpn "$alpn" -groups ffdhe3072:X25519:P-256 -max_send_frag 512
    srv_stop
    cap_stop
}
c_openssl_tls12_alpn_grease() {
    # RFC 8701 GREASE values in the ALPN list (0x0a0a, 0x5a5a, 0x1a1a, 0x4a4a written as the
    # two-octet strings "\n\n", "ZZ", "\x1a\x1a", "JJ"): mixed with real names, alone (no
    # common protocol: alert 120), and first in the list
    local name=openssl_tls12_alpn_grease offer
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4439" || return 1
    srv_start "$name" acap_lo 4439 t "${OSRV[@]}" -accept 4439 -naccept 3 -alpn h2,http/1.1 -tls1_2 ||
        return 1
    for offer in $'\n\n,h2,ZZ,http/1.1,h2' $'\x1a\x1a' 'JJ,http/1.1'; do
        cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4439 -tls1_2 \
            -servername www.example.test -alpn "$offer"
    done
    srv_stop
    cap_stop
}
c_openssl_tls12_resumed() {
    local name=openssl_tls12_resumed
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4431" || return 1
    srv_start "$name" acap_lo 4431 t "${OSRV[@]}" -accept 4431 -naccept 2 -alpn h2,http/1.1 -tls1_2 ||
        return 1
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4431 -servername www.example.test \
        -alpn h2,http/1.1 -sess_out "$W/$name.sess"
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4431 -servername www.example.test \
        -alpn h2,http/1.1 -sess_in "$W/$name.sess"
    srv_stop
    cap_stop
    grep -q '^Reused' "$W/cli.$name.log" || { log "$name: second handshake not resumed"; return 1; }
}
c_openssl_tls12_midstream() {
    # tcpdump starts after connection 1's handshake; connection 1 then sends its request
    # (application data only in the capture), then connection 2 runs a full handshake.
    local name=openssl_tls12_midstream
    srv_start "$name" acap_lo 4431 t "${OSRV[@]}" -accept 4431 -naccept 2 -alpn h2,http/1.1 -tls1_2 ||
        return 1
    { sleep 3; printf "$GET"; } | ip netns exec acap_lo timeout 20 "${OCLI[@]}" -connect 127.0.0.1:4431 \
        -servername www.example.test -alpn h2,http/1.1 >"$W/cli.$name.1.log" 2>&1 &
    local c1=$!
    wait_log "$W/cli.$name.1.log" "Verify return code" 5 || return 1
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4431" || return 1
    wait "$c1"
    cli_in "$name" acap_lo "$GET" "${OCLI[@]}" -connect 127.0.0.1:4431 -servername www.example.test \
        -alpn h2,http/1.1
    srv_stop
    cap_stop
}

# pyssl NAME SERVER_ALPNS CLIENT_ALPNS tls12|tls13 [keys]: CPython ssl client + server on lo
pyssl() {
    local -a ka=()
    [ -n "${5:-}" ] && ka=("$O/$1.keys")
    cap_start acap_lo lo "$O/$1.pcap" "tcp port 4431" || return 1
    cli "$1" acap_lo "$PY" "$TOOLS/pyssl.py" 4431 "$2" "$3" "$4" "${ka[@]}"
    cap_stop
}
c_pyssl_tls12_http11() { pyssl pyssl_tls12_http11 http/1.1 h2,http/1.1 tls12; }
c_pyssl_tls13_mismatch() { pyssl pyssl_tls13_mismatch foo h2,http/1.1 tls13 keys; }

# curl (and nghttp) to nginx on lo; SNI www.example.test via --resolve
CURL=(curl -sS -k -o /dev/null -w '%{http_version} %{http_code}\n'
    --resolve www.example.test:8443:127.0.0.1 --resolve www.example.test:8445:127.0.0.1)
c_nginx_curl_h2_tls12() {
    local name=nginx_curl_h2_tls12
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 8445" || return 1
    cli "$name" acap_lo "${CURL[@]}" --http2 https://www.example.test:8445/
    cap_stop
}
c_nginx_curl_h2_tls13() {
    local name=nginx_curl_h2_tls13
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 8443" || return 1
    cli "$name" acap_lo env SSLKEYLOGFILE="$O/$name.keys" "${CURL[@]}" --http2 \
        https://www.example.test:8443/
    cap_stop
}
c_nginx_curl_noalpn() {
    local name=nginx_curl_noalpn
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 8443" || return 1
    cli "$name" acap_lo "${CURL[@]}" --no-alpn https://www.example.test:8443/
    cap_stop
}
c_nghttp_h2_tls12() {
    local name=nghttp_h2_tls12
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 8445" || return 1
    cli "$name" acap_lo nghttp -n -t 10 https://127.0.0.1:8445/
    cap_stop
}

# gnutls NAME CLIENT_PRIORITY "SERVER ALPN ARGS" "CLIENT ALPN ARGS"
gnutls() {
    local name=$1 prio=$2 sargs=$3 cargs=$4
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 4431" || return 1
    # shellcheck disable=SC2086
    srv_start "$name" acap_lo 4431 t gnutls-serv --http -a --port 4431 --x509certfile "$CERT" \
        --x509keyfile "$KEY" $sargs || return 1
    # shellcheck disable=SC2086
    cli_in "$name" acap_lo "$GET" gnutls-cli --insecure --port 4431 --sni-hostname www.example.test \
        --priority "$prio" $cargs 127.0.0.1
    srv_stop
    cap_stop
}
c_gnutls_tls12_alpn() {
    gnutls gnutls_tls12_alpn NORMAL:-VERS-TLS1.3 "--alpn http/1.1" "--alpn spdy/3 --alpn http/1.1"
}
c_gnutls_tls13_fatal_mismatch() {
    gnutls gnutls_tls13_fatal_mismatch NORMAL "--alpn foo --alpn-fatal" "--alpn h2"
}

# chromium KEYLOG URL [flags...]: headless Chromium in acap_cli, fresh profile
chromium_run() {
    local kl=$1 url=$2
    shift 2
    local ud
    ud=$(mktemp -d "$W/chrome.XXXXXX")
    ip netns exec acap_cli timeout -k 5 45 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$ud" --ignore-certificate-errors --ssl-key-log-file="$kl" "$@" \
        --dump-dom "$url" >>"$W/chromium.log" 2>&1 </dev/null
}
c_chromium_nginx_h2_veth1500() {
    [ -n "$CHROMIUM" ] || { log "chromium not installed"; return 1; }
    local name=chromium_nginx_h2_veth1500
    nginx_start srv acap_srv || return 1
    cap_start acap_cli ac-c "$O/$name.pcap" "tcp port 8443" || return 1
    chromium_run "$O/$name.keys" https://www.example.test:8443/ \
        --host-resolver-rules="MAP www.example.test 10.99.0.1"
    cap_stop
    srv_stop "$NGINX_PID"
}
c_chromium_aioquic_h3_veth1500() {
    [ -n "$CHROMIUM" ] || { log "chromium not installed"; return 1; }
    local name=chromium_aioquic_h3_veth1500
    srv_start "$name" acap_srv 4433 u "$PY" "$TOOLS/quic_server.py" 10.99.0.1 4433 || return 1
    cap_start acap_cli ac-c "$O/$name.pcap" "udp port 4433" || return 1
    chromium_run "$O/$name.keys" https://quic.example.test:4433/ \
        --host-resolver-rules="MAP quic.example.test 10.99.0.1" --enable-quic \
        --origin-to-force-quic-on=quic.example.test:4433 --ignore-certificate-errors-spki-list="$SPKI"
    cap_stop
    srv_stop
}

# aioquic NAME "SERVER ARGS" "CLIENT ARGS" [KEYS]: aioquic client/server on lo, UDP 4433
aioquic() {
    local name=$1 sargs=$2 cargs=$3 keys=${4:-}
    local -a ka=()
    [ -n "$keys" ] && ka=(--keylog "$O/$name.keys")
    cap_start acap_lo lo "$O/$name.pcap" "udp port 4433" || return 1
    # shellcheck disable=SC2086
    srv_start "$name" acap_lo 4433 u "$PY" "$TOOLS/quic_server.py" 127.0.0.1 4433 $sargs || return 1
    # shellcheck disable=SC2086
    cli "$name" acap_lo "$PY" "$TOOLS/quic_client.py" 127.0.0.1 4433 --sni quic.example.test \
        "${ka[@]}" $cargs
    srv_stop
    cap_stop
}
c_aioquic_h3_v1() { aioquic aioquic_h3_v1 "" "--versions 1" keys; }
c_aioquic_h3_v2() { aioquic aioquic_h3_v2 "" "--versions 2"; }
c_aioquic_retry() { aioquic aioquic_retry "--retry" "--versions 1"; }
c_aioquic_alpn_mismatch() { aioquic aioquic_alpn_mismatch "--alpn foo" "--alpn h3,h3-29 --versions 1"; }

# ---- link types, encapsulations and file formats
c_openssl_aioquic_ipv6() {
    # openssl TLS 1.2 over TCP and aioquic h3 over UDP, fd00:99::2 -> fd00:99::1 on the veth
    local name=openssl_aioquic_ipv6
    cap_start acap_cli ac-c "$O/$name.pcap" "ip6 and (tcp port 4431 or udp port 4433)" || return 1
    srv_start "$name" acap_srv 4431 t "${OSRV[@]}" -accept '[fd00:99::1]:4431' -naccept 1 \
        -alpn h2,http/1.1 -tls1_2 || return 1
    local s1=$SRV_PID
    srv_start "$name.q" acap_srv 4433 u "$PY" "$TOOLS/quic_server.py" fd00:99::1 4433 || return 1
    cli_in "$name" acap_cli "$GET" "${OCLI[@]}" -connect '[fd00:99::1]:4431' \
        -servername www.example.test -alpn h2,http/1.1
    cli "$name" acap_cli "$PY" "$TOOLS/quic_client.py" fd00:99::1 4433 --sni quic.example.test \
        --versions 1
    srv_stop
    srv_stop "$s1"
    cap_stop
}

# two_exchanges NAME: exchange 1 over acap_cli's lo (127.0.0.1:4432, TLS 1.3, ALPN h2),
# exchange 2 from acap_cli over the veth to acap_srv (10.99.0.1:4431, TLS 1.2, ALPN h2)
two_exchanges() {
    local name=$1 s1 s2
    srv_start "$name.lo" acap_cli 4432 t "${OSRV[@]}" -accept 127.0.0.1:4432 -naccept 1 \
        -alpn h2,http/1.1 || return 1
    s1=$SRV_PID
    srv_start "$name.veth" acap_srv 4431 t "${OSRV[@]}" -accept 10.99.0.1:4431 -naccept 1 \
        -alpn h2,http/1.1 -tls1_2 || return 1
    s2=$SRV_PID
    cli_in "$name" acap_cli "$GET" "${OCLI[@]}" -connect 127.0.0.1:4432 -servername localhost \
        -alpn h2,http/1.1
    cli_in "$name" acap_cli "$GET" "${OCLI[@]}" -connect 10.99.0.1:4431 \
        -servername www.example.test -alpn h2,http/1.1
    srv_stop "$s1"
    srv_stop "$s2"
}
c_openssl_any_sll2() {
    local name=openssl_any_sll2
    cap_start acap_cli any "$O/$name.pcap" "tcp port 4431 or tcp port 4432" || return 1
    two_exchanges "$name" || return 1
    cap_stop
}
c_dumpcap_lo_any() {
    # pcapng with two interfaces of different link types: lo (Ethernet) and any (Linux cooked)
    local name=dumpcap_lo_any lg=$W/dumpcap.log
    ip netns exec acap_cli timeout 60 dumpcap -a duration:50 -B 64 -i lo -f "tcp port 4432" \
        -B 64 -i any -f "tcp port 4431" -w "$O/$name.pcapng" >"$lg" 2>&1 &
    CAP_PID=$!
    CAP_LOG=$lg
    wait_log "$lg" "Capturing on" 5 || return 1
    sleep 0.5
    two_exchanges "$name" || return 1
    cap_stop
}

# tunnel_pair NAME MODE PROTO_FILTER: TLS 1.2 across a GRE / IP-in-IP tunnel between
# acap_cli (10.99.20.2) and acap_srv (10.99.20.1) over the veth; capture on the underlay.
# Uses the kernel's `ip tunnel` when it can, else tools/tunnel_relay.py (same wire format).
tunnel_pair() {
    local name=$1 mode=$2 flt=$3 how=kernel r1= r2=
    if ip -n acap_srv tunnel add tun1 mode "$mode" local 10.99.0.1 remote 10.99.0.2 ttl 64 2>/dev/null &&
        ip -n acap_cli tunnel add tun1 mode "$mode" local 10.99.0.2 remote 10.99.0.1 ttl 64; then
        ip -n acap_srv addr add 10.99.20.1/30 dev tun1
        ip -n acap_cli addr add 10.99.20.2/30 dev tun1
        ip -n acap_srv link set tun1 up
        ip -n acap_cli link set tun1 up
    else
        how=relay
        ip -n acap_srv link del tun1 2>/dev/null
        ip netns exec acap_srv timeout 60 "$PY" "$TOOLS/tunnel_relay.py" --seconds 50 "$mode" 10.99.0.1 \
            10.99.0.2 tun1 10.99.20.1/30 >"$W/relay.$name.srv.log" 2>&1 &
        r1=$!
        ip netns exec acap_cli timeout 60 "$PY" "$TOOLS/tunnel_relay.py" --seconds 50 "$mode" 10.99.0.2 \
            10.99.0.1 tun1 10.99.20.2/30 >"$W/relay.$name.cli.log" 2>&1 &
        r2=$!
        wait_log "$W/relay.$name.srv.log" ready 5 && wait_log "$W/relay.$name.cli.log" ready 5 ||
            return 1
    fi
    log "$name: $mode tunnel via $how"
    echo "$how" >"$W/$name.how"
    cap_start acap_cli ac-c "$O/$name.pcap" "$flt" || return 1
    local under=$CAP_PID under_log=$CAP_LOG
    # the inner view too: the tunnel device itself (raw IP link type for a TUN device)
    cap_start acap_cli tun1 "$O/${name}_inner.pcap" "tcp port 4431" || return 1
    local inner=$CAP_PID
    srv_start "$name" acap_srv 4431 t "${OSRV[@]}" -accept 10.99.20.1:4431 -naccept 1 \
        -alpn h2,http/1.1 -tls1_2 || return 1
    cli_in "$name" acap_cli "$GET" "${OCLI[@]}" -connect 10.99.20.1:4431 \
        -servername www.example.test -alpn h2,http/1.1
    srv_stop
    local inner_log=$CAP_LOG
    CAP_PID=$inner cap_stop "$inner_log" || return 1
    CAP_PID=$under cap_stop "$under_log" || return 1
    if [ "$how" = relay ]; then
        srv_stop "$r1"
        srv_stop "$r2"
    else
        ip -n acap_srv link del tun1
        ip -n acap_cli link del tun1
    fi
    [ "$mode" = gre ] || rm -f "$O/${name}_inner.pcap"   # one inner view is enough
}
c_openssl_tls12_gre() { tunnel_pair openssl_tls12_gre gre "ip proto 47"; }
c_openssl_tls12_ipip() { tunnel_pair openssl_tls12_ipip ipip "ip proto 4"; }
c_openssl_tls12_vxlan() {
    # kernel VXLAN (VNI 42, UDP 4789) between the namespaces, underlay = the veth
    local name=openssl_tls12_vxlan spec ns n peer dev
    for spec in acap_srv:1:2:ac-s acap_cli:2:1:ac-c; do
        IFS=: read -r ns n peer dev <<<"$spec"
        ip -n $ns link add vx42 type vxlan id 42 local 10.99.0.$n remote 10.99.0.$peer \
            dstport 4789 dev $dev || return 1
        ip -n $ns link set vx42 addrgenmode none
        ip -n $ns addr add 10.99.30.$n/24 dev vx42
        ip -n $ns link set vx42 up
    done
    cap_start acap_cli ac-c "$O/$name.pcap" "udp port 4789" || return 1
    srv_start "$name" acap_srv 4431 t "${OSRV[@]}" -accept 10.99.30.1:4431 -naccept 1 \
        -alpn h2,http/1.1 -tls1_2 || return 1
    cli_in "$name" acap_cli "$GET" "${OCLI[@]}" -connect 10.99.30.1:4431 \
        -servername www.example.test -alpn h2,http/1.1
    srv_stop
    cap_stop
    ip -n acap_srv link del vx42
    ip -n acap_cli link del vx42
}

# vlan_pair NAME TAG...: TLS 1.2 across tagged frames between acap_vb (10.99.40.2) and
# acap_va (10.99.40.1); capture on the untagged parent veth so the tags show.
# TAG = TPID:VID, outermost first.  Kernel vlan devices when available, else the relay.
vlan_pair() {
    local name=$1
    shift
    local how=kernel r1= r2= ns n t tp vid dev proto first=${1#*:}
    for ns in acap_va acap_vb; do
        dev=ac-${ns#acap_}
        for t in "$@"; do
            IFS=: read -r tp vid <<<"$t"
            proto=802.1Q
            [ "$((tp))" = $((0x88a8)) ] && proto=802.1ad
            ip -n $ns link add link "$dev" name "$dev.$vid" type vlan proto $proto id "$vid" \
                2>/dev/null || { how=relay; break 2; }
            ip -n $ns link set "$dev.$vid" up
            dev=$dev.$vid
        done
        n=1
        [ $ns = acap_vb ] && n=2
        ip -n $ns addr add 10.99.40.$n/24 dev "$dev"
    done
    if [ $how = relay ]; then
        ip -n acap_va link del ac-va.$first 2>/dev/null
        ip -n acap_vb link del ac-vb.$first 2>/dev/null
        ip netns exec acap_va timeout 60 "$PY" "$TOOLS/tunnel_relay.py" --seconds 50 vlan ac-va tap0 \
            10.99.40.1/24 "$@" >"$W/relay.$name.a.log" 2>&1 &
        r1=$!
        ip netns exec acap_vb timeout 60 "$PY" "$TOOLS/tunnel_relay.py" --seconds 50 vlan ac-vb tap0 \
            10.99.40.2/24 "$@" >"$W/relay.$name.b.log" 2>&1 &
        r2=$!
        wait_log "$W/relay.$name.a.log" ready 5 && wait_log "$W/relay.$name.b.log" ready 5 ||
            return 1
    fi
    log "$name: tags $* via $how"
    echo "$how" >"$W/$name.how"
    cap_start acap_vb ac-vb "$O/$name.pcap" "" || return 1
    srv_start "$name" acap_va 4431 t "${OSRV[@]}" -accept 10.99.40.1:4431 -naccept 1 \
        -alpn h2,http/1.1 -tls1_2 || return 1
    cli_in "$name" acap_vb "$GET" "${OCLI[@]}" -connect 10.99.40.1:4431 \
        -servername www.example.test -alpn h2,http/1.1
    srv_stop
    cap_stop
    if [ $how = relay ]; then
        srv_stop "$r1"
        srv_stop "$r2"
    else
        # deleting the first-level vlan device removes the ones stacked on it
        ip -n acap_va link del ac-va.$first
        ip -n acap_vb link del ac-vb.$first
    fi
}
c_openssl_tls12_vlan() { vlan_pair openssl_tls12_vlan 0x8100:10; }
c_openssl_tls12_qinq() { vlan_pair openssl_tls12_qinq 0x88a8:100 0x8100:20; }

# ---- HTTP CONNECT with RFC 7639's ALPN header
# tinyproxy (Debian) on 127.0.0.1:3128 in acap_lo, CONNECT allowed to ports 8443 and 4431 only;
# tools/connect_client.py sends the ALPN header lines, then TLS to nginx 8443 through the tunnel.
# Captured: the client <-> proxy leg only (tcp port 3128); TLS 1.3 secrets in NAME.keys.
c_tinyproxy_connect_alpn() {
    local name=tinyproxy_connect_alpn d=$W/tinyproxy rc
    command -v tinyproxy >/dev/null || { log "tinyproxy not installed"; return 1; }
    mkdir -p "$d"
    chown nobody:nogroup "$d"           # tinyproxy drops to nobody, then opens its log
    cat >"$d/tinyproxy.conf" <<END
User nobody
Group nogroup
Listen 127.0.0.1
Port 3128
Timeout 20
MaxClients 8
LogFile "$d/tinyproxy.log"
LogLevel Info
PidFile "$d/tinyproxy.pid"
Allow 127.0.0.1
ConnectPort 8443
ConnectPort 4431
END
    local -a cc=("$PY" "$TOOLS/connect_client.py" 127.0.0.1 3128) kl=(--keylog "$O/$name.keys")
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 3128" || return 1
    srv_start "$name" acap_lo 3128 t tinyproxy -d -c "$d/tinyproxy.conf" || return 1
    # a. canonical header, TLS offer = the header's list; b. the same ids percent-encoded
    # differently; c. two header lines (combined); d. no header; e. header h2, TLS http/1.1 only
    cli "$name" acap_lo "${cc[@]}" 127.0.0.1:8443 "${kl[@]}" --alpn-header 'h2, http%2F1.1' &&
        cli "$name" acap_lo "${cc[@]}" 127.0.0.1:8443 "${kl[@]}" --alpn-header 'h%32, http%2f1.1' &&
        cli "$name" acap_lo "${cc[@]}" 127.0.0.1:8443 "${kl[@]}" --alpn-header h2 \
            --alpn-header 'http%2F1.1' &&
        cli "$name" acap_lo "${cc[@]}" 127.0.0.1:8443 "${kl[@]}" --tls-alpn h2,http/1.1 &&
        cli "$name" acap_lo "${cc[@]}" 127.0.0.1:8443 "${kl[@]}" --alpn-header h2 \
            --tls-alpn http/1.1 || { log "$name: a CONNECT client failed"; return 1; }
    # f. CONNECT to a port not in ConnectPort: refused (403), exit status 1
    cli "$name" acap_lo "${cc[@]}" 127.0.0.1:9999 --alpn-header h2
    rc=$?
    [ "$rc" = 1 ] || { log "$name: CONNECT to 9999 not refused (exit $rc)"; return 1; }
    # g. curl through the proxy (sends no ALPN header).  --connect-to, not --resolve: curl
    # leaves the name to the proxy, and the namespace has no resolver for www.example.test
    cli "$name" acap_lo env SSLKEYLOGFILE="$O/$name.keys" "${CURL[@]}" --http2 \
        --connect-to www.example.test:8443:127.0.0.1:8443 -x http://127.0.0.1:3128 \
        https://www.example.test:8443/ ||
        { log "$name: curl through the proxy failed"; return 1; }
    srv_stop
    cap_stop
}

# squid (Debian) on 127.0.0.1:3129 in acap_lo with Basic proxy auth: the client's first CONNECT
# carries no credentials and gets a 407 (connection kept open); the same socket asks again
# with Proxy-Authorization and the same ALPN header, gets 200, then TLS to nginx 8443.
# Captured: the client <-> proxy leg only (tcp port 3129); TLS 1.3 secrets in NAME.keys.
c_squid_connect_auth() {
    local name=squid_connect_auth d=$W/squid user=alpnsniff pass=throwaway-pw
    command -v squid >/dev/null || { log "squid not installed"; return 1; }
    [ -x /usr/lib/squid/basic_ncsa_auth ] || { log "squid lacks basic_ncsa_auth"; return 1; }
    mkdir -p "$d"
    printf '%s:%s\n' "$user" "$(openssl passwd -apr1 "$pass")" >"$d/passwd"
    chown -R proxy:proxy "$d"           # squid drops to user proxy, then writes its logs
    cat >"$d/squid.conf" <<END
http_port 127.0.0.1:3129
visible_hostname alpnsniff-proxy
auth_param basic program /usr/lib/squid/basic_ncsa_auth $d/passwd
auth_param basic realm alpnsniff
acl SSL_ports port 8443
acl CONNECT method CONNECT
acl authenticated proxy_auth REQUIRED
http_access deny CONNECT !SSL_ports
http_access allow authenticated
http_access deny all
cache deny all
cache_mem 0 MB
pinger_enable off
netdb_filename none
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log stdio:$d/access.log
coredump_dir $d
shutdown_lifetime 1 seconds
END
    cap_start acap_lo lo "$O/$name.pcap" "tcp port 3129" || return 1
    srv_start "$name" acap_lo 3129 t squid -N -f "$d/squid.conf" || return 1
    cli "$name" acap_lo "$PY" "$TOOLS/connect_client.py" 127.0.0.1 3129 127.0.0.1:8443 \
        --keylog "$O/$name.keys" --alpn-header 'h2, http%2F1.1' --auth "$user:$pass" \
        --retry-after-407 || { log "$name: the CONNECT client failed"; return 1; }
    srv_stop
    cap_stop
}

# ---------------------------------------------------------------- run
ALL=(
    openssl_tls12_h2 openssl_tls13_h2 openssl_tls12_alert120 openssl_tls13_alert120
    openssl_tls12_npn openssl_tls12_split_records openssl_tls13_hrr openssl_tls12_no_server_alpn
    openssl_tls12_resumed openssl_tls12_midstream openssl_tls12_alpn_grease
    pyssl_tls12_http11 pyssl_tls13_mismatch
    nginx_curl_h2_tls12 nginx_curl_h2_tls13 nginx_curl_noalpn nghttp_h2_tls12
    gnutls_tls12_alpn gnutls_tls13_fatal_mismatch
    aioquic_h3_v1 aioquic_h3_v2 aioquic_retry aioquic_alpn_mismatch
    chromium_nginx_h2_veth1500 chromium_aioquic_h3_veth1500
    openssl_tls12_h2_nanosec openssl_aioquic_ipv6 openssl_any_sll2 dumpcap_lo_any
    openssl_tls12_vlan openssl_tls12_qinq openssl_tls12_gre openssl_tls12_ipip openssl_tls12_vxlan
    tinyproxy_connect_alpn squid_connect_auth
)
# recipes/AREA.sh: more capture functions (c_NAME), each file appending its NAMEs to ALL
for recipe in "$HERE"/recipes/*.sh; do
    [ -e "$recipe" ] || continue
    # shellcheck source=/dev/null
    . "$recipe"
done

log "scratch dir $W; output to $OUT"
log "versions: $(openssl version | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d' ' -f3)," \
    "$(curl --version | head -1 | cut -d' ' -f1-2), $(gnutls-cli --version | head -1)," \
    "$(nghttp --version | cut -d' ' -f2), $(tcpdump --version | head -1)," \
    "$(tshark --version | head -1 | cut -d' ' -f1-3), aioquic $("$PY" -c 'import aioquic; print(aioquic.__version__)')," \
    "$([ -n "$CHROMIUM" ] && "$CHROMIUM" --version 2>/dev/null | grep -o 'Chromium [0-9.]*')"
setup_netns
nginx_start lo acap_lo || { log "nginx failed to start"; exit 1; }
NGINX_LO_PID=$NGINX_PID

for c in "${ALL[@]}"; do
    # shellcheck disable=SC2053
    [[ $c == $ONLY ]] || continue
    log "making $c"
    rm -f "$O/$c".*
    CAP_BAD=0
    if "c_$c" && [ "$CAP_BAD" = 0 ] && ls "$O/$c".pcap* >/dev/null 2>&1; then
        RESULTS+=("$c OK")
    else
        RESULTS+=("$c FAILED")
        log "$c FAILED (logs in $W)"
        KEEP_WORK=1
    fi
done
srv_stop "$NGINX_LO_PID"

# derived files: gzip copy, key logs embedded as pcapng Decryption Secrets Blocks
if [ -s "$O/openssl_tls12_h2.pcap" ]; then
    gzip -9 -n -c "$O/openssl_tls12_h2.pcap" >"$O/openssl_tls12_h2.pcap.gz"
fi
for c in openssl_tls13_h2 aioquic_h3_v1; do
    [ -s "$O/$c.keys" ] && editcap --inject-secrets "tls,$O/$c.keys" "$O/$c.pcap" "$O/${c}_dsb.pcapng"
done
# span-port encapsulations: the real captures above re-wrapped as switches, fabrics and
# wireless controllers wrap them (README: "Span-port encapsulations")
"$PY" "$TOOLS/span_wrap.py" --all "$O"

# ---------------------------------------------------------------- verify and install
shopt -s nullglob
log "verifying with $(tshark --version | head -1 | cut -d' ' -f1-3)"
printf '%s\0' "$O"/*.pcap "$O"/*.pcapng "$O"/*.pcap.gz | xargs -0 -n 1 -P 4 "$TOOLS/verify.sh" |
    sort | tee "$W/summary.txt"
mkdir -p "$OUT"
cp -f "$O"/* "$OUT"/ 2>/dev/null

echo
printf '%s\n' "${RESULTS[@]}"
echo "total $(du -ch "$OUT"/*.pcap* "$OUT"/*.keys 2>/dev/null | tail -1 | cut -f1); runtime $(($(date +%s) - T0)) s"
grep -q FAILED <<<"${RESULTS[*]}" && exit 2
exit 0
